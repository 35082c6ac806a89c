/**
 * SCRAM-SHA-256(-PLUS) client: RFC 7677's test vector byte for byte, a PostgreSQL-style exchange
 * checked by an independent server-side computation in this file, mechanism and GS2 choices, the
 * tls-server-end-point hash per certificate signature algorithm, and every refusal. Hermetic.
 */
import { createHash, createHmac, pbkdf2Sync } from "node:crypto"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { AuthenticationError } from "../src/internal/auth/AuthenticationError.ts"
import { certificateHashAlgorithm, tlsServerEndPoint } from "../src/internal/auth/channelBinding.ts"
import { ScramClient, ScramKeyCache, type ScramStartOptions } from "../src/internal/auth/scram.ts"

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64")

const ok = <A>(r: Result.Result<A, AuthenticationError>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${r.failure.reason}: ${r.failure.message}`)
  return r.success
}
const reasonOf = <A>(r: Result.Result<A, AuthenticationError>): string => {
  if (Result.isSuccess(r)) throw new Error("expected a failure")
  expect(r.failure._tag).toBe("AuthenticationError")
  return r.failure.reason
}

/**
 * Certificates made once with OpenSSL 3.0 (`openssl req -x509 -nodes -subj /CN=pg -days 36500
 * -outform DER`, with `-newkey rsa:1024 -sha256`, `-sha1`, `-newkey ec -pkeyopt
 * ec_paramgen_curve:P-256 -sha256`, `-sha384`, `-sha512 -sigopt rsa_padding_mode:pss`, and
 * `-newkey ed25519`), then base64. `digest` is `openssl dgst -<hash> -r <file>.der`: the expected
 * tls-server-end-point data, computed outside this code.
 */
const certs: Record<string, { der: string; hash: string | undefined; digest: string | undefined }> = {
  "rsa-sha256": {
    der:
      "MIIB+DCCAWGgAwIBAgIUHBqmBsP5zfOeKihCmJhgq7+hDYUwDQYJKoZIhvcNAQELBQAwDTELMAkGA1UEAwwCcGcwIBcNMjYx" +
      "MTIxMTMzMzQ3WhgPMjEyNjEwMjgxMzMzNDdaMA0xCzAJBgNVBAMMAnBnMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDk" +
      "tz9ZsVsiVU7MZuHMujdEUEqrpyw0ZMwwkr1uvMiWx03I1br6YtyEkDNIp0QP9cf4gELLE/220e89PRHoruJX/qtyD8+BCfoD" +
      "q7zT/R3S3ZUANclvFpvmuo6tkQXcgc9DSJZOYZTQhjLPH+cOejAy9U4lbfWYhYzIAj2G9blFCwIDAQABo1MwUTAdBgNVHQ4E" +
      "FgQUEDmSki04WZ0qrIPDRbMh3Ze5AdQwHwYDVR0jBBgwFoAUEDmSki04WZ0qrIPDRbMh3Ze5AdQwDwYDVR0TAQH/BAUwAwEB" +
      "/zANBgkqhkiG9w0BAQsFAAOBgQBPqvNAwnSLMX9bBMGGGOiMjbhMMMySvtej9mU/7YontoM5yyWX/WIfWcC9qTjeN/xpI7nu" +
      "zLQE58Lbu7Z5N1mu/gjVjAi0pN0QnABfJN+z/YqqsU1lSWFdfEtUPYldDPklPcHBfLeVK7gu7E/HOJcCe6bLacEwYPU8G0tK" +
      "w7gmSg==",
    hash: "sha256",
    digest: "25bddbd2b52876d56dbe84212a18aff73fb02724841d1cab45c459ec84ff6c4b"
  },
  "rsa-sha1": {
    der:
      "MIIB+DCCAWGgAwIBAgIUZ7On7GoCjdt757Kd2bgmMdp+WKAwDQYJKoZIhvcNAQEFBQAwDTELMAkGA1UEAwwCcGcwIBcNMjYx" +
      "MTIxMTMzMzQ3WhgPMjEyNjEwMjgxMzMzNDdaMA0xCzAJBgNVBAMMAnBnMIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDk" +
      "tz9ZsVsiVU7MZuHMujdEUEqrpyw0ZMwwkr1uvMiWx03I1br6YtyEkDNIp0QP9cf4gELLE/220e89PRHoruJX/qtyD8+BCfoD" +
      "q7zT/R3S3ZUANclvFpvmuo6tkQXcgc9DSJZOYZTQhjLPH+cOejAy9U4lbfWYhYzIAj2G9blFCwIDAQABo1MwUTAdBgNVHQ4E" +
      "FgQUEDmSki04WZ0qrIPDRbMh3Ze5AdQwHwYDVR0jBBgwFoAUEDmSki04WZ0qrIPDRbMh3Ze5AdQwDwYDVR0TAQH/BAUwAwEB" +
      "/zANBgkqhkiG9w0BAQUFAAOBgQDeCm3LtcXQTAWfew/TSCUHUi62KqQQq4JQLqhjuA8DfoLSLZxBkW8wV0KxVWheQMi81jmD" +
      "8UTJ0T8JxrZ++2PkMuaGH+y+NBG63byVQRMocMSlm9hX/pp3CdgO6HEXYCThmU/Ils4OcuhVd354PiOI1EsodB7/1mD1IfmK" +
      "TL7/LA==",
    hash: "sha256",
    digest: "f592d299af8197aafb3b11bc1c591db4bdf3b60edddf5ba1d572da3e45debc08"
  },
  "ecdsa-sha256": {
    der:
      "MIIBcTCCARegAwIBAgIUNsCKW8kk+v1lj0D8lojL2EhYp+4wCgYIKoZIzj0EAwIwDTELMAkGA1UEAwwCcGcwIBcNMjYxMTIx" +
      "MTMzMzQ3WhgPMjEyNjEwMjgxMzMzNDdaMA0xCzAJBgNVBAMMAnBnMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELkWy1Kge" +
      "6qVRwEKX1LPpuCOn5WRyORfW1eb8rBCBnfWS4gdK/bkhFXMQiW7+Hs9Bc62jAMsOtKfusGP1JYpgr6NTMFEwHQYDVR0OBBYE" +
      "FGP6MCezUQJOZOOCMn8iDIA2QJg7MB8GA1UdIwQYMBaAFGP6MCezUQJOZOOCMn8iDIA2QJg7MA8GA1UdEwEB/wQFMAMBAf8w" +
      "CgYIKoZIzj0EAwIDSAAwRQIgHRliWPTQoF9S6tG8VIC7X/I3uM4R50gFeHDqSYa1vtgCIQCyRrX2v0WYWu56Jb0+/3d+M6Es" +
      "zD4OBFwjaqSBdwmADw==",
    hash: "sha256",
    digest: "dd49010ecdc8121d5e7fb01fead32e5135e2da62e5646cd5b0414870342b7424"
  },
  "ecdsa-sha384": {
    der:
      "MIIBcjCCARegAwIBAgIUT+sE0QaDcoS/uw0Y/rTXUcbx0rcwCgYIKoZIzj0EAwMwDTELMAkGA1UEAwwCcGcwIBcNMjYxMTIx" +
      "MTMzMzQ4WhgPMjEyNjEwMjgxMzMzNDhaMA0xCzAJBgNVBAMMAnBnMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAELkWy1Kge" +
      "6qVRwEKX1LPpuCOn5WRyORfW1eb8rBCBnfWS4gdK/bkhFXMQiW7+Hs9Bc62jAMsOtKfusGP1JYpgr6NTMFEwHQYDVR0OBBYE" +
      "FGP6MCezUQJOZOOCMn8iDIA2QJg7MB8GA1UdIwQYMBaAFGP6MCezUQJOZOOCMn8iDIA2QJg7MA8GA1UdEwEB/wQFMAMBAf8w" +
      "CgYIKoZIzj0EAwMDSQAwRgIhANvxYtmE0Z17fnulHb3YZw7u1h5jMtE3Vu5epokOeussAiEAtjZVYRbEo/7yeO5xLCdnNNRe" +
      "CwKIA/n+GFoA2pAgVlc=",
    hash: "sha384",
    digest: "f98eef1cdc145209adf0e354a577b02dc70f57f28cc15a3740bdf76fa8adbd97cc0a16c9f772751be414d37d4a101c63"
  },
  "rsapss-sha512": {
    der:
      "MIICYDCCAZWgAwIBAgIUAbAucUnqcYVrpTKmvHdV1d9SdTQwQQYJKoZIhvcNAQEKMDSgDzANBglghkgBZQMEAgMFAKEcMBoG" +
      "CSqGSIb3DQEBCDANBglghkgBZQMEAgMFAKIDAgE+MA0xCzAJBgNVBAMMAnBnMCAXDTI2MTEyMTEzMzM0OFoYDzIxMjYxMDI4" +
      "MTMzMzQ4WjANMQswCQYDVQQDDAJwZzCBnzANBgkqhkiG9w0BAQEFAAOBjQAwgYkCgYEA5Lc/WbFbIlVOzGbhzLo3RFBKq6cs" +
      "NGTMMJK9brzIlsdNyNW6+mLchJAzSKdED/XH+IBCyxP9ttHvPT0R6K7iV/6rcg/PgQn6A6u80/0d0t2VADXJbxab5rqOrZEF" +
      "3IHPQ0iWTmGU0IYyzx/nDnowMvVOJW31mIWMyAI9hvW5RQsCAwEAAaNTMFEwHQYDVR0OBBYEFBA5kpItOFmdKqyDw0WzId2X" +
      "uQHUMB8GA1UdIwQYMBaAFBA5kpItOFmdKqyDw0WzId2XuQHUMA8GA1UdEwEB/wQFMAMBAf8wQQYJKoZIhvcNAQEKMDSgDzAN" +
      "BglghkgBZQMEAgMFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgMFAKIDAgE+A4GBAFqWw9a+opGB9uSYN4avclMKpNFw" +
      "PFrv10ihXsYQIey8CERbP00IIlnToHnX/xP9K0rHvBRHZ3KeKPClnfyP52iH18rTiT/AAHwbkbfeymppjkQGG8HCfUAAqHy0" +
      "vq79X7uZSQU4ygtQn+SnrnsOGjGpF/PLm11foizsnSBgb8RN",
    hash: "sha512",
    digest:
      "29526ac38f97ff6ac6b7e935e6ebe203456f57660fffb38d8902165daa3753e3568f3b9c24c85c5617fe3f9dd0b61e05bd26d149f1b69d167c25ca08de5fc6a2"
  },
  ed25519: {
    der:
      "MIIBMDCB46ADAgECAhQOrTenhqUChcizLrb/BWm57v5GqjAFBgMrZXAwDTELMAkGA1UEAwwCcGcwIBcNMjYxMTIxMTMzMzQ4" +
      "WhgPMjEyNjEwMjgxMzMzNDhaMA0xCzAJBgNVBAMMAnBnMCowBQYDK2VwAyEAwYpOqpSLAAM37rDDLeGv2/52Unht3KH/g9aZ" +
      "vOb/jaCjUzBRMB0GA1UdDgQWBBT6ZkUPS6g6oQGVRodbXg3xpJarFDAfBgNVHSMEGDAWgBT6ZkUPS6g6oQGVRodbXg3xpJar" +
      "FDAPBgNVHRMBAf8EBTADAQH/MAUGAytlcANBAMq5lFR6PneVsQGTsxCHEI7S4zc17tNcsHT6TmGujRQjmMa4pi9S352hLZKc" +
      "6uaDCfpFU4HyeDbUXo6sIZEzUgU=",
    hash: undefined,
    digest: undefined
  }
}
const der = (name: string) => new Uint8Array(Buffer.from(certs[name]!.der, "base64"))

/**
 * A server's side of SCRAM, written straight from RFC 5802 section 3 (independent of the client).
 * Returns server-first, and a function that checks client-final and returns server-final.
 */
const fakeServer = (options: { password: string; salt: Uint8Array; iterations: number; cbind: string }) => {
  const salted = pbkdf2Sync(options.password, options.salt, options.iterations, 32, "sha256")
  const clientKey = createHmac("sha256", salted).update("Client Key").digest()
  const storedKey = createHash("sha256").update(clientKey).digest()
  const serverKey = createHmac("sha256", salted).update("Server Key").digest()
  return (clientFirst: string) => {
    const bare = clientFirst.slice(clientFirst.indexOf(",", clientFirst.indexOf(",") + 1) + 1)
    const gs2 = clientFirst.slice(0, clientFirst.length - bare.length)
    const clientNonce = bare.split(",r=")[1]!
    const nonce = `${clientNonce}SERVERpart%$)`
    const serverFirst = `r=${nonce},s=${b64(options.salt)},i=${options.iterations}`
    const finish = (clientFinal: string): { serverFinal: string; proofOk: boolean; cbindOk: boolean } => {
      const withoutProof = clientFinal.slice(0, clientFinal.lastIndexOf(",p="))
      const proof = Buffer.from(clientFinal.slice(clientFinal.lastIndexOf(",p=") + 3), "base64")
      const authMessage = `${bare},${serverFirst},${withoutProof}`
      const signature = createHmac("sha256", storedKey).update(authMessage).digest()
      const recovered = Buffer.alloc(32)
      for (let i = 0; i < 32; i++) recovered[i] = proof[i]! ^ signature[i]!
      const proofOk = createHash("sha256").update(recovered).digest().equals(storedKey)
      const cbindOk = withoutProof === `c=${options.cbind},r=${nonce}` && options.cbind.length > 0
      const v = createHmac("sha256", serverKey).update(authMessage).digest("base64")
      return { serverFinal: `v=${v}`, proofOk, cbindOk }
    }
    return { gs2, serverFirst, finish }
  }
}

describe("RFC 7677 section 3 test vector", () => {
  const start = () =>
    ok(
      ScramClient.start({
        password: "pencil",
        user: "user",
        clientNonce: "rOprNGfwEbeRWgbNEkqO",
        mechanisms: ["SCRAM-SHA-256"],
        channelBinding: "prefer"
      })
    )
  const serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
  const clientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
  const serverFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

  it("produces the exact messages and accepts the server's signature", () => {
    const c = start()
    expect(c.mechanism).toBe("SCRAM-SHA-256")
    expect(c.initialResponse.mechanism).toBe("SCRAM-SHA-256")
    expect(dec(c.initialResponse.data)).toBe("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    expect(dec(ok(c.continue(enc(serverFirst))))).toBe(clientFinal)
    expect(c.done).toBe(false)
    ok(c.final(enc(serverFinal)))
    expect(c.done).toBe(true)
    expect(c.channelBound).toBe(false)
  })

  it("continueAsync yields the same client-final-message", async () => {
    const c = start()
    expect(dec(ok(await c.continueAsync(enc(serverFirst))))).toBe(clientFinal)
    ok(c.final(enc(serverFinal)))
  })

  it("the key cache skips PBKDF2 and gives the same answer", () => {
    const keyCache = new ScramKeyCache(2)
    const run = () => {
      const c = ok(
        ScramClient.start({
          password: "pencil",
          user: "user",
          clientNonce: "rOprNGfwEbeRWgbNEkqO",
          mechanisms: ["SCRAM-SHA-256"],
          channelBinding: "prefer",
          keyCache
        })
      )
      return dec(ok(c.continue(enc(serverFirst))))
    }
    expect(run()).toBe(clientFinal)
    const key = ScramKeyCache.key(
      enc("pencil"),
      new Uint8Array(Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64")),
      4096
    )
    expect(keyCache.get(key)).toBeDefined()
    expect(run()).toBe(clientFinal)
  })

  it("refuses a wrong server signature", () => {
    const c = start()
    ok(c.continue(enc(serverFirst)))
    expect(reasonOf(c.final(enc("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")))).toBe(
      "InvalidServerSignature"
    )
    expect(c.done).toBe(false)
  })
})

describe("PostgreSQL-style exchange", () => {
  it("sends an empty n=, a 32-character random nonce, and a proof the server accepts", () => {
    const server = fakeServer({
      password: "pa ss",
      salt: enc("0123456789abcdef"),
      iterations: 4096,
      cbind: "biws"
    })
    const c = ok(
      ScramClient.start({ password: "pa\u00A0ss", mechanisms: ["SCRAM-SHA-256"], channelBinding: "prefer" })
    )
    const first = dec(c.initialResponse.data)
    expect(first).toMatch(/^n,,n=,r=[A-Za-z0-9+/]{32}$/)
    const s = server(first)
    const result = s.finish(dec(ok(c.continue(enc(s.serverFirst))))) // U+00A0 was SASLprep'd to a space
    expect(result).toMatchObject({ proofOk: true, cbindOk: true })
    ok(c.final(enc(result.serverFinal)))
    expect(c.done).toBe(true)
  })

  it("uses a fresh nonce each time", () => {
    const opts: ScramStartOptions = {
      password: "x",
      mechanisms: ["SCRAM-SHA-256"],
      channelBinding: "disable"
    }
    expect(dec(ok(ScramClient.start(opts)).initialResponse.data)).not.toBe(
      dec(ok(ScramClient.start(opts)).initialResponse.data)
    )
  })

  it("binds to the certificate with SCRAM-SHA-256-PLUS", () => {
    const cert = der("ecdsa-sha384")
    const gs2 = "p=tls-server-end-point,,"
    const cbind = b64(Buffer.concat([enc(gs2), Buffer.from(certs["ecdsa-sha384"]!.digest!, "hex")]))
    const server = fakeServer({ password: "secret", salt: enc("salt"), iterations: 1, cbind })
    const c = ok(
      ScramClient.start({
        password: "secret",
        mechanisms: ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"],
        channelBinding: "prefer",
        tlsServerCertificate: cert
      })
    )
    expect(c.initialResponse.mechanism).toBe("SCRAM-SHA-256-PLUS")
    const s = server(dec(c.initialResponse.data))
    expect(s.gs2).toBe(gs2)
    const result = s.finish(dec(ok(c.continue(enc(s.serverFirst)))))
    expect(result).toMatchObject({ proofOk: true, cbindOk: true })
    expect(c.channelBound).toBe(false)
    ok(c.final(enc(result.serverFinal)))
    expect(c.channelBound).toBe(true)
  })
})

describe("mechanism and GS2 header choice (libpq's rules)", () => {
  const both = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
  const plain = ["SCRAM-SHA-256"]
  const rsa = der("rsa-sha256")
  const ed = der("ed25519")
  const cases: ReadonlyArray<
    [string, Omit<ScramStartOptions, "password">, { mechanism: string; gs2: string } | { reason: string }]
  > = [
    [
      "plain, no TLS",
      { mechanisms: plain, channelBinding: "prefer" },
      { mechanism: "SCRAM-SHA-256", gs2: "n,," }
    ],
    [
      "both, TLS, prefer",
      { mechanisms: both, channelBinding: "prefer", tlsServerCertificate: rsa },
      { mechanism: "SCRAM-SHA-256-PLUS", gs2: "p=tls-server-end-point,," }
    ],
    [
      "both, TLS, require",
      { mechanisms: both, channelBinding: "require", tlsServerCertificate: rsa },
      { mechanism: "SCRAM-SHA-256-PLUS", gs2: "p=tls-server-end-point,," }
    ],
    [
      "both, TLS, disable",
      { mechanisms: both, channelBinding: "disable", tlsServerCertificate: rsa },
      { mechanism: "SCRAM-SHA-256", gs2: "n,," }
    ],
    [
      "plain, TLS, prefer: client could bind",
      { mechanisms: plain, channelBinding: "prefer", tlsServerCertificate: rsa },
      { mechanism: "SCRAM-SHA-256", gs2: "y,," }
    ],
    [
      "plain, TLS, require",
      { mechanisms: plain, channelBinding: "require", tlsServerCertificate: rsa },
      { reason: "ChannelBindingRequired" }
    ],
    [
      "plain, no TLS, require",
      { mechanisms: plain, channelBinding: "require" },
      { reason: "ChannelBindingRequired" }
    ],
    [
      "PLUS offered without TLS",
      { mechanisms: both, channelBinding: "prefer" },
      { reason: "UnexpectedChannelBinding" }
    ],
    [
      "PLUS offered without TLS, disable",
      { mechanisms: both, channelBinding: "disable" },
      { reason: "UnexpectedChannelBinding" }
    ],
    [
      "Ed25519 certificate, prefer",
      { mechanisms: both, channelBinding: "prefer", tlsServerCertificate: ed },
      { mechanism: "SCRAM-SHA-256", gs2: "n,," }
    ],
    [
      "Ed25519 certificate, require",
      { mechanisms: both, channelBinding: "require", tlsServerCertificate: ed },
      { reason: "ChannelBindingRequired" }
    ],
    [
      "TLS without certificate, prefer",
      { mechanisms: both, channelBinding: "prefer", tls: true },
      { mechanism: "SCRAM-SHA-256", gs2: "n,," }
    ],
    [
      "TLS without certificate, require",
      { mechanisms: both, channelBinding: "require", tls: true },
      { reason: "ChannelBindingRequired" }
    ],
    [
      "only PLUS, disable",
      { mechanisms: ["SCRAM-SHA-256-PLUS"], channelBinding: "disable", tlsServerCertificate: rsa },
      { reason: "UnsupportedMechanism" }
    ],
    [
      "unknown mechanisms",
      { mechanisms: ["OAUTHBEARER", "SCRAM-SHA-1"], channelBinding: "prefer" },
      { reason: "UnsupportedMechanism" }
    ],
    ["empty list", { mechanisms: [], channelBinding: "prefer" }, { reason: "UnsupportedMechanism" }]
  ]
  for (const [name, options, expected] of cases) {
    it(name, () => {
      const r = ScramClient.start({ password: "pw", ...options })
      if ("reason" in expected) expect(reasonOf(r)).toBe(expected.reason)
      else {
        const c = ok(r)
        expect(c.mechanism).toBe(expected.mechanism)
        expect(dec(c.initialResponse.data).startsWith(`${expected.gs2}n=,r=`)).toBe(true)
      }
    })
  }

  it("refuses an empty password before sending anything", () => {
    expect(reasonOf(ScramClient.start({ password: "", mechanisms: plain, channelBinding: "prefer" }))).toBe(
      "NoPassword"
    )
  })
})

describe("tls-server-end-point hash (RFC 5929 section 4.1)", () => {
  for (const name of Object.keys(certs)) {
    const { hash, digest } = certs[name]!
    it(`${name} → ${hash ?? "unsupported"}`, () => {
      const alg = certificateHashAlgorithm(der(name))
      const data = tlsServerEndPoint(der(name))
      if (hash === undefined) {
        expect(alg.ok).toBe(false)
        expect(data.ok).toBe(false)
      } else {
        expect(alg).toMatchObject({ ok: true, hash })
        expect(data.ok && Buffer.from(data.data).toString("hex")).toBe(digest)
      }
    })
  }

  it("reads the signature OIDs", () => {
    expect(certificateHashAlgorithm(der("rsa-sha1"))).toMatchObject({ signatureOid: "1.2.840.113549.1.1.5" })
    expect(certificateHashAlgorithm(der("ecdsa-sha256"))).toMatchObject({
      signatureOid: "1.2.840.10045.4.3.2"
    })
    expect(certificateHashAlgorithm(der("ed25519"))).toMatchObject({ ok: false, signatureOid: "1.3.101.112" })
  })

  it("refuses what is not a certificate, including truncations", () => {
    expect(certificateHashAlgorithm(new Uint8Array()).ok).toBe(false)
    expect(certificateHashAlgorithm(enc("-----BEGIN CERTIFICATE-----")).ok).toBe(false)
    const full = der("rsa-sha256")
    for (let n = 0; n < full.length; n += 7)
      expect(certificateHashAlgorithm(full.subarray(0, n)).ok).toBe(false)
  })
})

describe("server-first-message validation", () => {
  const nonce = "clientNONCE"
  const start = () =>
    ok(
      ScramClient.start({
        password: "pw",
        clientNonce: nonce,
        mechanisms: ["SCRAM-SHA-256"],
        channelBinding: "prefer",
        maxIterations: 100_000
      })
    )
  const cases: ReadonlyArray<[string, string | Uint8Array, string]> = [
    ["nonce not extending ours", "r=otherNONCEserver,s=c2FsdA==,i=4096", "ServerNonceMismatch"],
    ["nonce equal to ours", `r=${nonce},s=c2FsdA==,i=4096`, "ServerNonceMismatch"],
    ["nonce with a non-printable character", `r=${nonce}\u0001x,s=c2FsdA==,i=4096`, "MalformedServerMessage"],
    ["mandatory extension", `m=ext,r=${nonce}x,s=c2FsdA==,i=4096`, "MalformedServerMessage"],
    ["missing salt", `r=${nonce}x,i=4096`, "MalformedServerMessage"],
    ["attributes out of order", `s=c2FsdA==,r=${nonce}x,i=4096`, "MalformedServerMessage"],
    ["empty salt", `r=${nonce}x,s=,i=4096`, "MalformedServerMessage"],
    ["salt not base64", `r=${nonce}x,s=c2Fsd!==,i=4096`, "MalformedServerMessage"],
    ["salt with bad padding", `r=${nonce}x,s=c2FsdA=,i=4096`, "MalformedServerMessage"],
    ["zero iterations", `r=${nonce}x,s=c2FsdA==,i=0`, "MalformedServerMessage"],
    ["negative iterations", `r=${nonce}x,s=c2FsdA==,i=-1`, "MalformedServerMessage"],
    ["iterations not a number", `r=${nonce}x,s=c2FsdA==,i=4k`, "MalformedServerMessage"],
    ["iterations with a leading zero", `r=${nonce}x,s=c2FsdA==,i=04096`, "MalformedServerMessage"],
    ["iterations above the bound", `r=${nonce}x,s=c2FsdA==,i=100001`, "UnsafeIterationCount"],
    ["iterations beyond int32", `r=${nonce}x,s=c2FsdA==,i=99999999999`, "MalformedServerMessage"],
    ["empty message", "", "MalformedServerMessage"],
    ["not attribute=value", `r=${nonce}x,s=c2FsdA==,i=4096,junk`, "MalformedServerMessage"],
    ["invalid UTF-8", new Uint8Array([0x72, 0x3d, 0xff]), "MalformedServerMessage"]
  ]
  for (const [name, message, reason] of cases) {
    it(name, () => {
      const c = start()
      expect(reasonOf(c.continue(typeof message === "string" ? enc(message) : message))).toBe(reason)
      // The machine is dead after a failure.
      expect(reasonOf(c.continue(enc(`r=${nonce}x,s=c2FsdA==,i=1`)))).toBe("UnexpectedMessage")
    })
  }

  it("accepts and ignores optional extensions after i=", () => {
    const c = start()
    expect(ok(c.receiveServerFirst(enc(`r=${nonce}x,s=c2FsdA==,i=4096,x=future`)))).toMatchObject({
      nonce: `${nonce}x`,
      iterations: 4096
    })
  })
})

describe("server-final-message and ordering", () => {
  const begin = () => {
    const server = fakeServer({ password: "pw", salt: enc("salt"), iterations: 2, cbind: "biws" })
    const c = ok(
      ScramClient.start({ password: "pw", mechanisms: ["SCRAM-SHA-256"], channelBinding: "prefer" })
    )
    const s = server(dec(c.initialResponse.data))
    const final = s.finish(dec(ok(c.continue(enc(s.serverFirst)))))
    return { c, final }
  }

  it("e= is a ServerError carrying the server's reason", () => {
    const { c } = begin()
    const r = c.final(enc("e=invalid-proof"))
    expect(reasonOf(r)).toBe("ServerError")
    expect(Result.isFailure(r) && r.failure.message).toContain("invalid-proof")
  })

  for (const [name, message] of [
    ["missing v=", "x=abc"],
    ["signature not base64", "v=!!!!"],
    ["signature of the wrong length", `v=${b64(new Uint8Array(31))}`],
    ["empty", ""]
  ] as const) {
    it(name, () => expect(reasonOf(begin().c.final(enc(message)))).toBe("MalformedServerMessage"))
  }

  it("a correct signature completes it, once", () => {
    const { c, final } = begin()
    ok(c.final(enc(final.serverFinal)))
    expect(reasonOf(c.final(enc(final.serverFinal)))).toBe("UnexpectedMessage")
  })

  it("SASLFinal before SASLContinue is refused", () => {
    const c = ok(
      ScramClient.start({ password: "pw", mechanisms: ["SCRAM-SHA-256"], channelBinding: "prefer" })
    )
    expect(reasonOf(c.final(enc("v=abc=")))).toBe("UnexpectedMessage")
  })

  it("a second SASLContinue is refused", () => {
    const { c } = begin()
    expect(reasonOf(c.continue(enc("r=x,s=c2FsdA==,i=1")))).toBe("UnexpectedMessage")
  })
})
