/**
 * InetCodecs: inet and cidr. Values are strings in the server's own text form (`192.168.0.1`,
 * `10.0.0.0/8`, `2001:db8::1/64`): the binary decoder reproduces network_out exactly (the
 * address is printed with all four IPv4 octets, IPv6 with the longest run of at least two zero
 * groups shortened to `::` and an IPv4 tail for mapped/compatible addresses; inet omits the
 * netmask when it covers the whole address, cidr always prints it), so text and binary agree.
 * Encoders accept that text (full dotted quads, any RFC 4291 IPv6 form). A cidr without `/bits`
 * is encoded as a host network (/32, /128), not with the classful guess cidr_in makes for text.
 *
 * Binary layout (inet_send in src/backend/utils/adt/network.c): family (2 IPv4, 3 IPv6), bits,
 * is_cidr flag, address length (4 or 16), address bytes.
 */
import type { ByteWriter } from "./ByteWriter.ts"
import { type Codec, decodeFail, describeValue, encodeFail, makeCodec } from "./Codec.ts"
import { ArrayOid, Oid } from "./Oid.ts"

const AF_INET = 2
const AF_INET6 = 3

interface Address {
  readonly bytes: Uint8Array
  readonly bits: number
}

const formatIpv6 = (a: Uint8Array): string => {
  const words: number[] = []
  for (let i = 0; i < 8; i++) words.push((a[2 * i] << 8) | a[2 * i + 1])
  // Longest run of zero words (the first of equal runs); a single zero word is not shortened.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (bestLen < 2) best = -1
  let out = ""
  for (let i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestLen) {
      if (i === best) out += ":"
      continue
    }
    if (i !== 0) out += ":"
    // IPv4-compatible (::a.b.c.d, but not ::1 or ::) and IPv4-mapped (::ffff:a.b.c.d) addresses.
    if (
      i === 6 &&
      best === 0 &&
      (bestLen === 6 || (bestLen === 7 && words[7] !== 1) || (bestLen === 5 && words[5] === 0xffff))
    ) {
      out += `${a[12]}.${a[13]}.${a[14]}.${a[15]}`
      return out
    }
    out += words[i].toString(16)
  }
  if (best >= 0 && best + bestLen === 8) out += ":"
  return out
}

const formatAddress = (family: number, addr: Uint8Array, bits: number, cidr: boolean): string => {
  const max = family === AF_INET ? 32 : 128
  const text = family === AF_INET ? `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}` : formatIpv6(addr)
  return cidr || bits !== max ? `${text}/${bits}` : text
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

const parseIpv4 = (t: string): Uint8Array | undefined => {
  const m = IPV4.exec(t)
  if (m === null) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const n = Number(m[i + 1])
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

const parseIpv6 = (t: string): Uint8Array | undefined => {
  const out = new Uint8Array(16)
  const halves = t.split("::")
  if (halves.length > 2) return undefined
  const groups = (s: string): number[] | undefined => {
    if (s === "") return []
    const parts = s.split(":")
    const words: number[] = []
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p)
        if (v4 === undefined) return undefined
        words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3])
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) words.push(parseInt(p, 16))
      else return undefined
    }
    return words
  }
  const head = groups(halves[0])
  const tail = halves.length === 2 ? groups(halves[1]) : []
  if (head === undefined || tail === undefined) return undefined
  const n = head.length + tail.length
  if (halves.length === 1 ? n !== 8 : n > 7) return undefined
  const words = [...head, ...new Array<number>(8 - n).fill(0), ...tail]
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >> 8
    out[2 * i + 1] = words[i] & 0xff
  }
  return out
}

const parseAddress = (oid: number, value: unknown): Address => {
  if (typeof value === "string") {
    const t = value.trim()
    const slash = t.indexOf("/")
    const host = slash < 0 ? t : t.slice(0, slash)
    const bytes = host.includes(":") ? parseIpv6(host) : parseIpv4(host)
    if (bytes !== undefined) {
      const max = bytes.length * 8
      const bitsText = slash < 0 ? String(max) : t.slice(slash + 1)
      const bits = Number(bitsText)
      if (/^\d{1,3}$/.test(bitsText) && bits <= max) {
        if (oid === Oid.cidr) {
          for (let i = 0; i < bytes.length; i++) {
            const keep = Math.min(8, Math.max(0, bits - 8 * i))
            if ((bytes[i] & (0xff >> keep)) !== 0)
              encodeFail(oid, `${t} has bits set to the right of the netmask`)
          }
        }
        return { bytes, bits }
      }
    }
  }
  return encodeFail(oid, `expected an IP address string, got ${describeValue(value)}`)
}

const decode = (oid: number, b: Uint8Array, s: number, e: number): string => {
  if (e - s < 4) return decodeFail(oid, "inet value shorter than its header")
  const family = b[s]
  const bits = b[s + 1]
  const n = b[s + 3]
  const max =
    family === AF_INET ? 32 : family === AF_INET6 ? 128 : decodeFail(oid, `invalid address family ${family}`)
  if (n !== max / 8 || e - s !== 4 + n) decodeFail(oid, `invalid address length ${n}`)
  if (bits > max) decodeFail(oid, `invalid netmask length ${bits}`)
  return formatAddress(family, b.subarray(s + 4, e), bits, b[s + 2] !== 0)
}

const inetCodec = (name: string, oid: number, arrayOid: number): Codec<string> => {
  const cidr = oid === Oid.cidr
  return makeCodec({
    name,
    oid,
    arrayOid,
    parse: (t) => t,
    binaryDecode: (b, s, e) => decode(oid, b, s, e),
    textEncode: (v) => {
      const a = parseAddress(oid, v)
      return formatAddress(a.bytes.length === 4 ? AF_INET : AF_INET6, a.bytes, a.bits, cidr)
    },
    binaryEncode: (v: unknown, out: ByteWriter) => {
      const a = parseAddress(oid, v)
      out.u8(a.bytes.length === 4 ? AF_INET : AF_INET6)
      out.u8(a.bits)
      out.u8(cidr ? 1 : 0)
      out.u8(a.bytes.length)
      out.raw(a.bytes)
    }
  })
}

/**
 * The codecs of inet and cidr (values as their text form); malformed values throw `DecodeError`,
 * invalid addresses `TypeEncodeError`.
 */
export const InetCodecs = {
  inet: inetCodec("inet", Oid.inet, ArrayOid.inet),
  cidr: inetCodec("cidr", Oid.cidr, ArrayOid.cidr)
} as const
