"""Counts of a clipstream output folder, read with Python's csv and json modules (the reference the
report's browser test compares the page's numbers with). Usage: report_counts.py OUT_DIR -> JSON."""
import csv, glob, json, os, sys

d = sys.argv[1]
out = {}


def rows(name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    with open(p, newline='', encoding='utf-8-sig') as f:
        return [{k.strip(): (v or '').strip() for k, v in r.items() if k is not None} for r in csv.DictReader(f)]


def true(v):
    return v.strip().lower() in ('true', '1', 'yes')


videos, clips = rows('videos.csv'), rows('clips.csv')
if videos is not None or clips is not None:
    videos, clips = videos or [], clips or []
    ids = [v['video_id'] for v in videos]
    for c in clips:
        if c['video_id'] not in ids:
            ids.append(c['video_id'])
    out['videos'] = len(ids)
    out['clips'] = len(clips)
    if clips and 'kept' in clips[0]:
        kept = sum(true(c['kept']) for c in clips)
    elif clips and 'filter_reason' in clips[0]:
        kept = sum(c['filter_reason'] == '' for c in clips)
    else:
        kept = len(clips)
    out['kept'] = kept
    out['filtered'] = len(clips) - kept
    out['failures'] = sum(true(v['failed']) for v in videos)
    out['span_issues'] = len(rows('span_issues.csv') or [])
    shots = rows('shots.csv')
    if shots:
        out['shots'] = len(shots)

dup = rows('duplicates.csv')
if dup is not None:
    out['duplicate_groups'] = len({r['group'] for r in dup})
    out['duplicates_removed'] = sum(not true(r['kept']) for r in dup)
sem = rows('semdedup.csv')
if sem is not None:
    out['semdedup_removed'] = sum(not true(r['kept']) for r in sem)

logs = []
for p in glob.glob(os.path.join(d, 'log_*.json')):
    with open(p) as f:
        j = json.load(f)
    if j.get('job') == 'extract':
        logs.append(j)
if logs or glob.glob(os.path.join(d, 'shard-*.msgpack')):
    latest = {}
    for j in sorted(logs, key=lambda j: j['timestamp']):
        for r in j['results']:
            latest[r['unit']] = r
    out['shards'] = len(glob.glob(os.path.join(d, 'shard-*.msgpack')))
    out['extract_written'] = sum(r.get('written', 0) for r in latest.values())
    out['extract_failed'] = sum(len(r.get('failed', [])) for r in latest.values())
    out['extract_skipped'] = sum(len(r.get('skipped', [])) for r in latest.values())

meta = rows('metadata.csv')
if meta is not None or os.path.exists(os.path.join(d, 'faces-videos.json')):
    meta = meta or []
    out['faces'] = len(meta)
    out['tracks'] = len({(r['file_original'], r['track']) for r in meta})
    fv = {}
    if os.path.exists(os.path.join(d, 'faces-videos.json')):
        with open(os.path.join(d, 'faces-videos.json')) as f:
            fv = json.load(f).get('videos', {})
    out['face_videos'] = len(fv)
    out['face_failures'] = sum(v.get('status') == 'failed' for v in fv.values())

works = [p for p in glob.glob(os.path.join(d, '*.segments')) if os.path.isdir(p)]
if works:
    out['segment_videos'] = len(works)
    recs = [json.load(open(p)) for w in works for p in glob.glob(os.path.join(w, 'records', 'seg_*.json'))]
    out['segments'] = len(recs)
    out['segments_failed'] = sum(r['status'] != 'done' for r in recs)

print(json.dumps(out))
