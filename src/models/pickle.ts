import { ClipstreamError } from '../errors.js';

/**
 * A safe reader of Python pickles: it understands the opcodes that `torch.save` and numpy/Caffe2
 * checkpoints use, and resolves a GLOBAL only through the caller's allowlist. Nothing in the file
 * is ever executed: a global outside the list (`posix.system`, `builtins.eval`, ...) is refused
 * with an error naming it, before any REDUCE could call it.
 */

/** A callable the allowlist provides for one `module.name` global. */
export interface PickleGlobal {
  readonly global: string;
  /** REDUCE / NEWOBJ: `callable(*args)`. */
  call?(args: unknown[]): unknown;
}

/** Object built by an allowlisted callable that accepts BUILD (`__setstate__`). */
export interface Buildable {
  setState(state: unknown): void;
}

export interface UnpickleOptions {
  /** Allowlisted globals, keyed `module.name`. */
  globals: ReadonlyMap<string, PickleGlobal>;
  /** BINPERSID handler (torch storages); absent: persistent ids are refused. */
  persistentLoad?(pid: unknown): unknown;
  /** Where the bytes came from, for error messages. */
  where: string;
}

const MARK = Symbol('mark');

/** `bytes` from a pickle (BINBYTES, or `_codecs.encode(text, 'latin1')` as Python 3 writes bytes in protocol 2). */
export class PickleBytes {
  constructor(readonly data: Uint8Array) {}
}

/** An ERR_MODEL about a weights file: `{file}: {message}`. */
export function weightsFileError(where: string, message: string): ClipstreamError {
  return new ClipstreamError('ERR_MODEL', `${where}: ${message}`, { where: { file: where } });
}

const fail = weightsFileError;

/**
 * Unpickles one pickle starting at `offset`; returns the value and the offset after its STOP
 * (legacy torch files hold several pickles back to back).
 *
 * @example
 * const { value } = unpickle(bytes, 0, { globals: new Map(), where: 'data.pkl' });
 */
export function unpickle(bytes: Uint8Array, offset: number, options: UnpickleOptions): { value: unknown; end: number } {
  const { where } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let pos = offset;
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => {
    if (pos + n > bytes.byteLength) throw fail(where, `truncated pickle: needs ${n} bytes at offset ${pos}, the data ends at ${bytes.byteLength}`);
  };
  const take = (n: number) => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = () => take(1)[0]!;
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(where, `pickle length ${v} at offset ${pos - 8} is too large`);
    return Number(v);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail(where, `truncated pickle: unterminated text argument at offset ${pos}`);
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (!stack.length) throw fail(where, `corrupt pickle: stack underflow at offset ${pos - 1}`);
    return stack.pop();
  };
  const popMark = () => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw fail(where, `corrupt pickle: no MARK before offset ${pos - 1}`);
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = () => {
    if (!stack.length) throw fail(where, `corrupt pickle: stack underflow at offset ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const getMemo = (k: number) => {
    if (!memo.has(k)) throw fail(where, `corrupt pickle: memo key ${k} is not defined (offset ${pos})`);
    return memo.get(k);
  };
  const signedLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const resolveGlobal = (module: string, name: string): PickleGlobal => {
    const key = `${module}.${name}`;
    const g = options.globals.get(key);
    if (!g) throw fail(where, `refused pickle global ${key}: only tensor, array and dict rebuilds are allowed (nothing from the file is executed)`);
    return g;
  };
  const callable = (f: unknown, op: string): PickleGlobal => {
    if (!f || typeof f !== 'object' || typeof (f as PickleGlobal).call !== 'function') {
      throw fail(where, `corrupt or unsupported pickle: ${op} on a value that is not an allowed callable (offset ${pos - 1})`);
    }
    return f as PickleGlobal;
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) throw fail(where, `corrupt pickle: SETITEM on a ${typeof dict} (offset ${pos - 1})`);
    for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
  };
  const append = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) throw fail(where, `corrupt pickle: APPEND on a ${typeof list} (offset ${pos - 1})`);
    list.push(...items);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: {
        // PROTO
        const v = u8();
        if (v > 5) throw fail(where, `pickle protocol ${v} is not supported (0 to 5 are)`);
        break;
      }
      case 0x95:
        u64();
        break; // FRAME: framing is transparent here
      case 0x2e: {
        // STOP
        return { value: pop(), end: pos };
      }
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x30:
        pop();
        break; // POP
      case 0x31:
        popMark();
        break; // POP_MARK
      case 0x32:
        stack.push(top());
        break; // DUP
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4a:
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break; // BININT
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(u16());
        break; // BININT2
      case 0x8a:
        stack.push(signedLong(take(u8())));
        break; // LONG1
      case 0x8b:
        stack.push(signedLong(take(u32())));
        break; // LONG4
      case 0x47:
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break; // BINFLOAT (big-endian)
      case 0x49: {
        // INT (text; also True/False as 01/00)
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : Number.parseInt(s, 10));
        break;
      }
      case 0x4c:
        stack.push(Number.parseInt(line().replace(/L$/, ''), 10));
        break; // LONG (text)
      case 0x46:
        stack.push(Number.parseFloat(line()));
        break; // FLOAT (text)
      case 0x58:
        stack.push(utf8.decode(take(u32())));
        break; // BINUNICODE
      case 0x8c:
        stack.push(utf8.decode(take(u8())));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(utf8.decode(take(u64())));
        break; // BINUNICODE8
      // Python 2 str, read as Python 3's pickle.load(encoding='latin1') does: one char per byte.
      case 0x54:
        stack.push(Buffer.from(take(u32())).toString('latin1'));
        break; // BINSTRING
      case 0x55:
        stack.push(Buffer.from(take(u8())).toString('latin1'));
        break; // SHORT_BINSTRING
      case 0x42:
        stack.push(new PickleBytes(take(u32())));
        break; // BINBYTES
      case 0x43:
        stack.push(new PickleBytes(take(u8())));
        break; // SHORT_BINBYTES
      case 0x8e:
        stack.push(new PickleBytes(take(u64())));
        break; // BINBYTES8
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x29:
        stack.push(Object.freeze([]));
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(Object.freeze(popMark()));
        break; // TUPLE
      case 0x85:
        stack.push(Object.freeze([pop()]));
        break; // TUPLE1
      case 0x86: {
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b]));
        break;
      } // TUPLE2
      case 0x87: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(Object.freeze([a, b, c]));
        break;
      } // TUPLE3
      case 0x6c:
        stack.push(popMark());
        break; // LIST
      case 0x64: {
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      } // DICT
      case 0x61: {
        const v = pop();
        append(top(), [v]);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        append(top(), items);
        break;
      } // APPENDS
      case 0x73: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        setItems(top(), items);
        break;
      } // SETITEMS
      case 0x71:
        memo.set(u8(), top());
        break; // BINPUT
      case 0x72:
        memo.set(u32(), top());
        break; // LONG_BINPUT
      case 0x70:
        memo.set(Number.parseInt(line(), 10), top());
        break; // PUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
        stack.push(getMemo(u8()));
        break; // BINGET
      case 0x6a:
        stack.push(getMemo(u32()));
        break; // LONG_BINGET
      case 0x67:
        stack.push(getMemo(Number.parseInt(line(), 10)));
        break; // GET
      case 0x63: {
        const module = line();
        const name = line();
        stack.push(resolveGlobal(module, name));
        break;
      } // GLOBAL
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail(where, `corrupt pickle: STACK_GLOBAL needs two strings (offset ${at})`);
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const f = callable(pop(), 'REDUCE');
        if (!Array.isArray(args)) throw fail(where, `corrupt pickle: REDUCE of ${f.global} without an argument tuple (offset ${at})`);
        stack.push(f.call!([...args]));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        const f = callable(pop(), 'NEWOBJ');
        stack.push(f.call!(Array.isArray(args) ? [...args] : []));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof Map) break; // OrderedDict's instance attributes (torch's `_metadata`): not data
        if (obj && typeof obj === 'object' && typeof (obj as Buildable).setState === 'function') {
          (obj as Buildable).setState(state);
          break;
        }
        throw fail(where, `corrupt or unsupported pickle: BUILD on a value that takes no state (offset ${at})`);
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) throw fail(where, `refused pickle opcode BINPERSID: this file may not refer to external storages (offset ${at})`);
        stack.push(options.persistentLoad(pid));
        break;
      }
      default: {
        const names: Record<number, string> = {
          105: 'INST',
          111: 'OBJ',
          130: 'EXT1',
          131: 'EXT2',
          132: 'EXT4',
          80: 'PERSID',
          146: 'NEWOBJ_EX',
          143: 'EMPTY_SET',
          144: 'ADDITEMS',
          145: 'FROZENSET',
          150: 'BYTEARRAY8',
          151: 'NEXT_BUFFER',
          152: 'READONLY_BUFFER',
          83: 'STRING',
          86: 'UNICODE',
        };
        const name = names[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
        throw fail(where, `refused pickle opcode ${name} at offset ${at}: not one that tensor/array checkpoints use`);
      }
    }
  }
}
