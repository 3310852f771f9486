/**
 * A throwaway CA and a server certificate for 127.0.0.1 signed by it, made
 * with openssl, for fake TLS servers in unit tests.
 *
 * @module
 */

/** Paths and PEM texts of a test CA and server certificate. */
export interface TestCertificates {
  /** The folder holding the files; remove it when done. */
  dir: string;
  /** Path of the CA certificate (PEM). */
  ca: string;
  /** The server certificate (PEM text). */
  cert: string;
  /** The server's private key (PEM text). */
  key: string;
}

/**
 * Makes a CA and a certificate for IP 127.0.0.1 signed by it, valid 2 days.
 *
 * @returns The files and texts.
 * @throws {Error} With openssl's message when a step fails.
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-tls-" });
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`Cannot run openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  const key = ["-newkey", "rsa:2048", "-nodes"];
  await run(
    "req",
    "-x509",
    ...key,
    "-days",
    "2",
    "-subj",
    "/CN=sluice test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  await run(
    "req",
    "-new",
    ...key,
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  );
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
  );
  await run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
    "-out",
    "server.pem",
  );
  return {
    dir,
    ca: `${dir}/ca.pem`,
    cert: await Deno.readTextFile(`${dir}/server.pem`),
    key: await Deno.readTextFile(`${dir}/server.key`),
  };
}
