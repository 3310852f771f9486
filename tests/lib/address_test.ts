import { maskUrlPassword } from "../../lib/address.ts";
import { assertEquals } from "../_assert.ts";

Deno.test("maskUrlPassword() masks the credentials of every URL, however the password is spelt", () => {
  const cases: Array<[string, string]> = [
    ["http://admin:supersecret123@ch:8123", "http://admin:***@ch:8123"],
    ["HTTPS://admin:supersecret123@es:9200/prefix", "HTTPS://admin:***@es:9200/prefix"],
    ["x http://admin:p@ss@ch:8123/db y", "x http://admin:***@ch:8123/db y"],
    ["http://admin:sec/ret@ch:8123", "http://admin:***@ch:8123"],
    ["http://admin:sec:ret,x@ch", "http://admin:***@ch"],
    ["http://supersecret123@vm:8428", "http://***@vm:8428"],
    ["admin:supersecret123@ch:8123", "admin:***@ch:8123"],
    ['got "admin:supersecret123@ch:8123"', 'got "admin:***@ch:8123"'],
    ['{"error":"http://u:pw@h:1 refused"}', '{"error":"http://u:***@h:1 refused"}'],
    [
      "http://u:p1@h1:9200,http://u:p2@h2:9200",
      "http://u:***@h1:9200,http://u:***@h2:9200",
    ],
    ["http://admin:***@ch:8123", "http://admin:***@ch:8123"],
  ];
  for (const [text, masked] of cases) assertEquals(maskUrlPassword(text), masked, text);
});

Deno.test("maskUrlPassword() leaves a text without credentials as it is", () => {
  for (
    const text of [
      "http://h:8123/path",
      "user@example.com",
      "Code: 516. DB::Exception: admin: Authentication failed",
      "[::1]:9092",
      "",
    ]
  ) {
    assertEquals(maskUrlPassword(text), text);
  }
});
