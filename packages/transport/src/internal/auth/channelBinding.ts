/**
 * tls-server-end-point channel binding data (RFC 5929 section 4.1) for SCRAM-SHA-256-PLUS: the hash
 * of the server certificate's DER, with the hash named by the certificate's signature algorithm,
 * except that MD5 and SHA-1 are replaced by SHA-256.
 *
 * The signature algorithm is read from the certificate with a minimal DER reader (outer SEQUENCE,
 * skip tbsCertificate, read the signatureAlgorithm's OID; for RSASSA-PSS, the hash inside its
 * parameters). Node's X509Certificate does not expose it on every supported Node version.
 *
 * Algorithms without a single hash (Ed25519, Ed448) have no tls-server-end-point binding;
 * PostgreSQL fails to compute one for them too, so they are reported as unsupported rather than
 * guessed. Not here: tls-unique / tls-exporter (PostgreSQL implements neither).
 */

import { nodeCrypto } from "../builtins.ts"

export type CertificateHash =
  | "sha224"
  | "sha256"
  | "sha384"
  | "sha512"
  | "sha3-224"
  | "sha3-256"
  | "sha3-384"
  | "sha3-512"

export type CertificateHashResult =
  | { readonly ok: true; readonly hash: CertificateHash; readonly signatureOid: string }
  | { readonly ok: false; readonly message: string; readonly signatureOid?: string }

/** Signature algorithm OID → hash to use for the binding (MD5/SHA-1 already upgraded to SHA-256). */
const signatureHashes: ReadonlyMap<string, CertificateHash> = new Map([
  // PKCS #1 (RFC 8017 appendix C): md5WithRSA, sha1WithRSA, sha224/256/384/512WithRSA
  ["1.2.840.113549.1.1.4", "sha256"],
  ["1.2.840.113549.1.1.5", "sha256"],
  ["1.2.840.113549.1.1.14", "sha224"],
  ["1.2.840.113549.1.1.11", "sha256"],
  ["1.2.840.113549.1.1.12", "sha384"],
  ["1.2.840.113549.1.1.13", "sha512"],
  // ANSI X9.62 ECDSA (RFC 5758 section 3.2): ecdsa-with-SHA1, -SHA224/256/384/512
  ["1.2.840.10045.4.1", "sha256"],
  ["1.2.840.10045.4.3.1", "sha224"],
  ["1.2.840.10045.4.3.2", "sha256"],
  ["1.2.840.10045.4.3.3", "sha384"],
  ["1.2.840.10045.4.3.4", "sha512"],
  // DSA: dsa-with-sha1 (RFC 3279), dsa-with-sha224/256 (RFC 5758)
  ["1.2.840.10040.4.3", "sha256"],
  ["2.16.840.1.101.3.4.3.1", "sha224"],
  ["2.16.840.1.101.3.4.3.2", "sha256"],
  // NIST SHA-3 signatures (CSOR): ecdsa-with-sha3-*, rsassa-pkcs1-v1_5-with-sha3-*
  ["2.16.840.1.101.3.4.3.9", "sha3-224"],
  ["2.16.840.1.101.3.4.3.10", "sha3-256"],
  ["2.16.840.1.101.3.4.3.11", "sha3-384"],
  ["2.16.840.1.101.3.4.3.12", "sha3-512"],
  ["2.16.840.1.101.3.4.3.13", "sha3-224"],
  ["2.16.840.1.101.3.4.3.14", "sha3-256"],
  ["2.16.840.1.101.3.4.3.15", "sha3-384"],
  ["2.16.840.1.101.3.4.3.16", "sha3-512"]
])

/** Hash algorithm OIDs that may appear in RSASSA-PSS parameters (RFC 4055, RFC 8017). */
const hashOids: ReadonlyMap<string, CertificateHash> = new Map([
  ["1.3.14.3.2.26", "sha256"], // SHA-1, upgraded
  ["2.16.840.1.101.3.4.2.4", "sha224"],
  ["2.16.840.1.101.3.4.2.1", "sha256"],
  ["2.16.840.1.101.3.4.2.2", "sha384"],
  ["2.16.840.1.101.3.4.2.3", "sha512"],
  ["2.16.840.1.101.3.4.2.7", "sha3-224"],
  ["2.16.840.1.101.3.4.2.8", "sha3-256"],
  ["2.16.840.1.101.3.4.2.9", "sha3-384"],
  ["2.16.840.1.101.3.4.2.10", "sha3-512"]
])

const RSASSA_PSS = "1.2.840.113549.1.1.10"

interface Tlv {
  readonly tag: number
  /** Offset of the contents. */
  readonly start: number
  /** Offset one past the contents. */
  readonly end: number
}

/** Reads one DER TLV at `at`, inside [.., limit). Only the forms certificates use (low tag numbers). */
const readTlv = (der: Uint8Array, at: number, limit: number): Tlv | undefined => {
  if (at + 2 > limit) return undefined
  const tag = der[at]!
  if ((tag & 0x1f) === 0x1f) return undefined
  let len = der[at + 1]!
  let start = at + 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 4 || start + n > limit) return undefined
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!
    start += n
  }
  const end = start + len
  return end > limit ? undefined : { tag, start, end }
}

const decodeOid = (der: Uint8Array, tlv: Tlv): string | undefined => {
  if (tlv.tag !== 0x06 || tlv.end <= tlv.start) return undefined
  const arcs: number[] = []
  let value = 0
  for (let i = tlv.start; i < tlv.end; i++) {
    const b = der[i]!
    value = value * 128 + (b & 0x7f)
    if (value > Number.MAX_SAFE_INTEGER / 256) return undefined
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 40 ? 0 : value < 80 ? 1 : 2
        arcs.push(first, value - first * 40)
      } else arcs.push(value)
      value = 0
    }
  }
  return der[tlv.end - 1]! & 0x80 ? undefined : arcs.join(".")
}

/** The signatureAlgorithm AlgorithmIdentifier of an X.509 certificate (RFC 5280 section 4.1). */
const signatureAlgorithm = (der: Uint8Array): { oid: string; params: Tlv | undefined } | undefined => {
  const cert = readTlv(der, 0, der.length)
  if (cert === undefined || cert.tag !== 0x30) return undefined
  const tbs = readTlv(der, cert.start, cert.end)
  if (tbs === undefined || tbs.tag !== 0x30) return undefined
  const algId = readTlv(der, tbs.end, cert.end)
  if (algId === undefined || algId.tag !== 0x30) return undefined
  const oidTlv = readTlv(der, algId.start, algId.end)
  if (oidTlv === undefined) return undefined
  const oid = decodeOid(der, oidTlv)
  if (oid === undefined) return undefined
  const params = oidTlv.end < algId.end ? readTlv(der, oidTlv.end, algId.end) : undefined
  return { oid, params }
}

/** RSASSA-PSS-params' hashAlgorithm ([0], default SHA-1; RFC 4055 section 3.1). */
const pssHash = (der: Uint8Array, params: Tlv | undefined): CertificateHash | undefined => {
  if (params === undefined || params.tag !== 0x30) return undefined
  const first = params.start < params.end ? readTlv(der, params.start, params.end) : undefined
  if (first === undefined || first.tag !== 0xa0) return "sha256" // absent: SHA-1, upgraded
  const algId = readTlv(der, first.start, first.end)
  if (algId === undefined || algId.tag !== 0x30) return undefined
  const oidTlv = readTlv(der, algId.start, algId.end)
  const oid = oidTlv === undefined ? undefined : decodeOid(der, oidTlv)
  return oid === undefined ? undefined : hashOids.get(oid)
}

/** Which hash tls-server-end-point uses for this certificate. */
export const certificateHashAlgorithm = (der: Uint8Array): CertificateHashResult => {
  const alg = signatureAlgorithm(der)
  if (alg === undefined)
    return { ok: false, message: "the server certificate is not a DER X.509 certificate" }
  const hash = alg.oid === RSASSA_PSS ? pssHash(der, alg.params) : signatureHashes.get(alg.oid)
  return hash === undefined
    ? {
        ok: false,
        message: `the server certificate's signature algorithm ${alg.oid} has no tls-server-end-point hash`,
        signatureOid: alg.oid
      }
    : { ok: true, hash, signatureOid: alg.oid }
}

/** The channel binding data: the certificate's DER hashed per RFC 5929 section 4.1. */
export const tlsServerEndPoint = (
  der: Uint8Array
): { readonly ok: true; readonly data: Uint8Array } | { readonly ok: false; readonly message: string } => {
  const alg = certificateHashAlgorithm(der)
  if (!alg.ok) return alg
  return { ok: true, data: new Uint8Array(nodeCrypto().createHash(alg.hash).update(der).digest()) }
}
