/**
 * One vocabulary: the library says `outputDir`, `parallelDecoders`, `parallelVideos` whatever the
 * command; the CLI keeps the seeds' spellings as aliases, and a library error about the option
 * names the flag the user typed.
 */
import { describe, expect, it } from 'vitest';
import { clipsSpec } from '../../src/cli/clips-command.js';
import { bundleSpec } from '../../src/cli/commands.js';
import { extractSpec } from '../../src/cli/extract-command.js';
import { facesSpec } from '../../src/cli/faces-command.js';
import { segmentsSpec } from '../../src/cli/segments-command.js';
import { InvalidOptionError } from '../../src/errors.js';
import { cliMessage, flagFor } from '../../src/util/args.js';

describe("one name per option in the library, the seeds' flags on the CLI", () => {
  it.each([
    [extractSpec, 'options.outputDir', '--out_path'],
    [clipsSpec, 'options.outputDir', '--out_dir'],
    [bundleSpec, 'options.outputDir', '--out_dir'],
    [facesSpec, 'options.outputDir', '--output_dir'],
    [segmentsSpec, 'options.outputDir', '--output_dir'],
    [extractSpec, 'options.parallelDecoders', '--num_workers'],
    [facesSpec, 'options.parallelVideos', '--num_workers'],
    [clipsSpec, 'options.parallelVideos', '--num_processes'],
  ])('%#: %s is %s', (spec, option, flag) => {
    expect(flagFor(spec, option)).toBe(flag);
  });

  it('a library error about outputDir reads as the flag of the command', () => {
    const err = new InvalidOptionError("Expected non-empty string for options.outputDir but received '' of type string", 'options.outputDir');
    expect(cliMessage(err, extractSpec)).toBe("--out_path: expected non-empty string but received '' of type string");
    expect(cliMessage(err, facesSpec)).toBe("--output_dir: expected non-empty string but received '' of type string");
  });
});
