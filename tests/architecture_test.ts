/**
 * docs/architecture.svg is what `deno task architecture` draws from
 * docs/architecture.dot (Graphviz `dot`): the picture is not edited by hand
 * and does not fall behind its source.
 */
import { assert, assertEquals } from "./_assert.ts";

const DOCS = new URL("../docs/", import.meta.url);

Deno.test("docs/architecture.svg is dot's drawing of docs/architecture.dot", async () => {
  const out = await new Deno.Command("dot", {
    args: ["-Tsvg", new URL("architecture.dot", DOCS).pathname],
  }).output();
  assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
  const drawn = new TextDecoder().decode(out.stdout);
  const committed = await Deno.readTextFile(new URL("architecture.svg", DOCS));
  assert(drawn === committed, "run `deno task architecture` and commit docs/architecture.svg");
  for (
    const part of ["Apache Kafka", "ClickHouse", "VictoriaMetrics", "Prometheus", "dead letters"]
  ) {
    assert(committed.includes(part), part);
  }
});
