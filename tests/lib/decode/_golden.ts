/**
 * The golden-file table the text decoders share (Telegraf's
 * `parsers/<name>/testdata/<case>/`): each folder under
 * `tests/testdata/<decoder>/` holds one message (`input.txt` or
 * `input.json`, read as bytes), optionally the decoder's variables
 * (`env.json`), and the whole `DecodeResult` expected (`expected.json`),
 * times written as strings of nanoseconds.
 *
 * @module
 */

import type { Decoder, DecodeResult, DecoderModule } from "../../../lib/decoder.ts";
import { VarReader } from "../../../lib/variables.ts";
import { assertEquals } from "../../_assert.ts";

/**
 * A decode result as `expected.json` writes it: bigint times as strings.
 *
 * @param result The result.
 * @returns Plain JSON data.
 */
export function plain(result: DecodeResult): unknown {
  return JSON.parse(
    JSON.stringify(result, (_key, value) => typeof value === "bigint" ? String(value) : value),
  );
}

/**
 * Builds a decoder from its module the way sluice does, from variables.
 *
 * @param module The decoder module.
 * @param env The variables.
 * @returns The decoder and the configuration problems found.
 */
export function build(module: DecoderModule, env: Record<string, string> = {}) {
  const reader = new VarReader(env, module.variables);
  const decode = module.create(reader);
  return { decode, problems: reader.problems };
}

/**
 * Decodes every case folder and compares with its `expected.json`.
 *
 * @param module The decoder module.
 * @param folder `tests/testdata/<decoder>/`.
 * @param count How many cases there must be (so that a lost folder cannot pass unseen).
 * @returns The names of the cases run.
 */
export async function runGoldenCases(
  module: DecoderModule,
  folder: URL,
  count: number,
): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(folder)) if (entry.isDirectory) names.push(entry.name);
  names.sort();
  assertEquals(names.length, count, `case folders in ${folder}`);
  for (const name of names) {
    const dir = new URL(`${name}/`, folder);
    const files = new Set([...Deno.readDirSync(dir)].map((f) => f.name));
    const env = files.has("env.json")
      ? JSON.parse(await Deno.readTextFile(new URL("env.json", dir)))
      : {};
    const { decode, problems } = build(module, env);
    assertEquals(problems, [], `${name}: env.json`);
    const input = await Deno.readFile(
      new URL(files.has("input.json") ? "input.json" : "input.txt", dir),
    );
    const expected = JSON.parse(await Deno.readTextFile(new URL("expected.json", dir)));
    assertEquals(plain(decode(input)), expected, name);
  }
  return names;
}

/**
 * Checks the errors every text decoder gives for a whole message: a
 * tombstone, bytes that are not UTF-8, nothing but blank lines.
 *
 * @param decode The decoder.
 */
export function assertMessageErrors(decode: Decoder): void {
  const cases: Array<[Uint8Array | string | null, string]> = [
    [null, "Cannot decode message: it has no value (tombstone)"],
    [new Uint8Array([0x68, 0xff, 0x0a]), "Cannot decode message: it is not valid UTF-8"],
    ["", "Cannot decode message: it is empty"],
    ["\r\n \n\t\n", "Cannot decode message: it is empty"],
  ];
  for (const [value, error] of cases) {
    assertEquals(decode(value), { records: [], skipped: 0, errors: [{ index: 0, error }] });
  }
}
