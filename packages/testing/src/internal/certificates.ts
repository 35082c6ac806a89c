/**
 * Generates, at server start, a throw-away certificate authority, a server certificate for
 * localhost (DNS localhost, IP 127.0.0.1 and ::1) and a client certificate, so that TLS tests can
 * verify the server (sslmode=verify-full) and authenticate by certificate without shipping keys in
 * the repository. ECDSA P-256 because key generation takes about a millisecond where RSA-2048
 * takes tens; every client that speaks TLS 1.2+ accepts it. Nothing here is for production use.
 */
import { webcrypto } from "node:crypto"
// @peculiar/x509 resolves its ASN.1 helpers through tsyringe, which needs the Reflect metadata polyfill.
import "reflect-metadata"
import * as x509 from "@peculiar/x509"

export interface Certificates {
  /** PEM of the CA that signed the server and client certificates. */
  readonly ca: string
  readonly serverCert: string
  readonly serverKey: string
  /** A client certificate whose CN is `clientUser`, for `cert` authentication. */
  readonly clientCert: string
  readonly clientKey: string
  readonly clientUser: string
}

const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const

const pem = (label: string, der: ArrayBuffer): string => {
  const b64 = Buffer.from(der).toString("base64")
  const lines = b64.match(/.{1,64}/g) ?? []
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

const keyPair = () =>
  webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"]) as Promise<CryptoKeyPair>

const serial = () =>
  Buffer.from(webcrypto.getRandomValues(new Uint8Array(8)))
    .toString("hex")
    .replace(/^./, "1")

export const generateCertificates = async (clientUser: string): Promise<Certificates> => {
  x509.cryptoProvider.set(webcrypto as unknown as Crypto)
  const notBefore = new Date(Date.now() - 60 * 60 * 1000)
  const notAfter = new Date(Date.now() + 7 * 24 * 60 * 60 * 1000)
  const caKeys = await keyPair()
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=pgline test CA",
    notBefore,
    notAfter,
    signingAlgorithm: algorithm,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey)
    ]
  })
  const issue = async (subject: string, extensions: Array<x509.Extension>) => {
    const keys = await keyPair()
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      signingAlgorithm: algorithm,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
        ...extensions
      ]
    })
    const key = pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey))
    return { cert: cert.toString("pem") + "\n", key }
  }
  const server = await issue("CN=localhost", [
    new x509.SubjectAlternativeNameExtension([
      { type: "dns", value: "localhost" },
      { type: "ip", value: "127.0.0.1" },
      { type: "ip", value: "::1" }
    ]),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth])
  ])
  const client = await issue(`CN=${clientUser}`, [
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])
  ])
  return {
    ca: ca.toString("pem") + "\n",
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    clientUser
  }
}
