/**
 * The systemd unit (`deploy/systemd/sluice.service`) passes `systemd-analyze
 * verify` with nothing to say, and keeps its hardening. `verify` also wants
 * the command to exist: it checks a copy whose ExecStart runs /bin/true, the
 * rest as shipped.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";

const UNIT = new URL("../deploy/systemd/sluice.service", import.meta.url);

Deno.test("deploy/systemd/sluice.service passes systemd-analyze verify without a warning", async () => {
  const text = await Deno.readTextFile(UNIT);
  assertMatch(text, /^ExecStart=\/usr\/local\/bin\/sluice --env-file \/etc\/sluice\/sluice\.env$/m);
  const dir = await Deno.makeTempDir();
  try {
    const copy = `${dir}/sluice.service`;
    await Deno.writeTextFile(copy, text.replace(/^ExecStart=\S+/m, "ExecStart=/bin/true"));
    const out = await new Deno.Command("systemd-analyze", { args: ["verify", copy] }).output();
    const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assertEquals({ code: out.code, said: said.trim() }, { code: 0, said: "" });
    const security = await new Deno.Command("systemd-analyze", {
      args: ["security", "--offline=yes", "--threshold=30", copy],
    }).output();
    const report = new TextDecoder().decode(security.stdout);
    assertEquals(security.code, 0, report);
    // An exposure level of 3.0 or below ("OK"), with the user and the file system locked down.
    assertMatch(report, /Overall exposure level for sluice\.service: [0-2]\.\d OK/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  for (
    const line of [
      "DynamicUser=yes",
      "ProtectSystem=strict",
      "Restart=on-failure",
      "NoNewPrivileges=yes",
    ]
  ) {
    assert(text.includes(`\n${line}\n`), line);
  }
});
