/**
 * Hermetic: resolution of settings from explicit options, connection strings, service files and
 * environment variables. The environment is an explicit record behind a ConfigProvider; the home
 * directory, OS user and socket directories come from a fake System; files are temp files, and
 * nothing outside the temp directory is ever read.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Redacted } from "effect"
import * as PgConfig from "../src/PgConfig.ts"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "pgline-config-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const inTmp = (p: string): boolean => p === tmp || p.startsWith(tmp + path.sep)

const write = (name: string, text: string, mode = 0o600): string => {
  const p = path.join(tmp, name)
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, text, { mode })
  fs.chmodSync(p, mode)
  return p
}

interface FakeSystem {
  readonly user?: string | undefined
  readonly home?: string | undefined
  readonly socketDirs?: ReadonlyArray<string>
}

/** Real file access inside the temp directory only; socket directories are simulated. */
const fakeSystem = (o: FakeSystem = {}): PgConfig.PgConfigSystem => ({
  userName: () => ("user" in o ? o.user : "alice"),
  homeDir: () => o.home,
  readFile: (p) => (inTmp(p) && fs.existsSync(p) ? fs.readFileSync(p, "utf8") : undefined),
  stat: (p) => {
    if ((o.socketDirs ?? []).includes(p)) return { isFile: false, mode: 0o755 }
    if (!inTmp(p) || !fs.existsSync(p)) return undefined
    const st = fs.statSync(p)
    return { isFile: st.isFile(), mode: st.mode & 0o7777 }
  },
  checkPermissions: true
})

const resolveWith = (
  input: PgConfig.PgConfigInput | undefined,
  env: Record<string, string> = {},
  system: PgConfig.PgConfigSystem = fakeSystem()
) =>
  PgConfig.make(input).pipe(
    Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env })),
    Effect.provideService(PgConfig.System, system)
  )

const failWith = (
  input: PgConfig.PgConfigInput | undefined,
  env: Record<string, string> = {},
  system?: PgConfig.PgConfigSystem
) => Effect.flip(resolveWith(input, env, system))

const secret = (r: Redacted.Redacted<string> | undefined): string | undefined =>
  r === undefined ? undefined : Redacted.value(r)

describe("defaults", () => {
  it.effect("uses the socket directory, port 5432, the OS user, and database = user", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith(
        undefined,
        {},
        fakeSystem({ user: "bob", socketDirs: ["/var/run/postgresql", "/tmp"] })
      )
      expect(o.hosts).toEqual([{ host: "/var/run/postgresql", hostaddr: undefined, port: 5432 }])
      expect(o.user).toBe("bob")
      expect(o.database).toBe("bob")
      expect(o.password).toBeUndefined()
      expect(o.sslmode).toBe("prefer")
      expect(o.sslnegotiation).toBe("postgres")
      expect(o.sslsni).toBe(true)
      expect(o.sslMinProtocolVersion).toBe("TLSv1.2")
      expect(o.channelBinding).toBe("prefer")
      expect(o.gssencmode).toBe("prefer")
      expect(o.targetSessionAttrs).toBe("any")
      expect(o.loadBalanceHosts).toBe("disable")
      expect(o.minProtocolVersion).toBe("3.0")
      expect(o.maxProtocolVersion).toBe("3.0")
      expect(o.connectTimeout).toBe(0)
      expect(o.keepalives).toBe(true)
      expect(o.clientEncoding).toBe("UTF8")
      expect(o.serverParams).toEqual({})
      expect(o.warnings).toEqual([])
    })
  )

  it.effect("falls back to /tmp, then to localhost over TCP", () =>
    Effect.gen(function* () {
      const t = yield* resolveWith(undefined, {}, fakeSystem({ socketDirs: ["/tmp"] }))
      expect(t.hosts[0]!.host).toBe("/tmp")
      const l = yield* resolveWith(undefined, {}, fakeSystem({ socketDirs: [] }))
      expect(l.hosts[0]!.host).toBe("localhost")
    })
  )

  it.effect("fails when no user is given and the OS user is unknown", () =>
    Effect.gen(function* () {
      const e = yield* failWith(undefined, {}, fakeSystem({ user: undefined }))
      expect(e.key).toBe("user")
    })
  )

  it.effect("finds ~/.pgpass through HOME, else the system's home directory", () =>
    Effect.gen(function* () {
      const a = yield* resolveWith(undefined, { HOME: "/home/env" }, fakeSystem({ home: "/home/sys" }))
      expect(a.passfile).toBe("/home/env/.pgpass")
      const b = yield* resolveWith(undefined, {}, fakeSystem({ home: "/home/sys" }))
      expect(b.passfile).toBe("/home/sys/.pgpass")
      const c = yield* resolveWith(undefined, {}, fakeSystem({}))
      expect(c.passfile).toBeUndefined()
    })
  )
})

describe("environment variables", () => {
  it.effect("maps every PG* variable to its setting", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith(undefined, {
        PGHOST: "db1,db2",
        PGHOSTADDR: "10.0.0.1,10.0.0.2",
        PGPORT: "6000",
        PGDATABASE: "app",
        PGUSER: "carol",
        PGPASSWORD: "pw",
        PGPASSFILE: "/x/pgpass",
        PGOPTIONS: "-c geqo=off",
        PGAPPNAME: "myapp",
        PGSSLMODE: "verify-ca",
        PGSSLNEGOTIATION: "direct",
        PGSSLCOMPRESSION: "1",
        PGSSLCERT: "/c.crt",
        PGSSLKEY: "/c.key",
        PGSSLROOTCERT: "/root.crt",
        PGSSLCRL: "/root.crl",
        PGSSLCRLDIR: "/crl.d",
        PGSSLSNI: "0",
        PGSSLCERTMODE: "require",
        PGREQUIREAUTH: "scram-sha-256",
        PGSSLMINPROTOCOLVERSION: "tlsv1.3",
        PGSSLMAXPROTOCOLVERSION: "TLSv1.3",
        PGGSSENCMODE: "disable",
        PGKRBSRVNAME: "postgres",
        PGGSSLIB: "gssapi",
        PGCONNECT_TIMEOUT: "7",
        PGCLIENTENCODING: "UTF8",
        PGTARGETSESSIONATTRS: "read-write",
        PGLOADBALANCEHOSTS: "random",
        PGMINPROTOCOLVERSION: "3.0",
        PGMAXPROTOCOLVERSION: "latest",
        PGCHANNELBINDING: "require",
        PGREQUIREPEER: "postgres",
        PGTZ: "Europe/Paris",
        PGGEQO: "off",
        PGDATESTYLE: "ISO, DMY"
      })
      expect(o.hosts).toEqual([
        { host: "db1", hostaddr: "10.0.0.1", port: 6000 },
        { host: "db2", hostaddr: "10.0.0.2", port: 6000 }
      ])
      expect(o.database).toBe("app")
      expect(o.user).toBe("carol")
      expect(secret(o.password)).toBe("pw")
      expect(o.passfile).toBe("/x/pgpass")
      expect(o.options).toBe("-c geqo=off")
      expect(o.applicationName).toBe("myapp")
      expect(o.sslmode).toBe("verify-ca")
      expect(o.sslnegotiation).toBe("direct")
      expect(o.sslcert).toBe("/c.crt")
      expect(o.sslkey).toBe("/c.key")
      expect(o.sslrootcert).toBe("/root.crt")
      expect(o.sslcrl).toBe("/root.crl")
      expect(o.sslcrldir).toBe("/crl.d")
      expect(o.sslsni).toBe(false)
      expect(o.sslcertmode).toBe("require")
      expect(o.requireAuth?.allowed).toEqual(["scram-sha-256"])
      expect(o.sslMinProtocolVersion).toBe("TLSv1.3")
      expect(o.sslMaxProtocolVersion).toBe("TLSv1.3")
      expect(o.gssencmode).toBe("disable")
      expect(o.krbsrvname).toBe("postgres")
      expect(o.gsslib).toBe("gssapi")
      expect(o.connectTimeout).toBe(7)
      expect(o.targetSessionAttrs).toBe("read-write")
      expect(o.loadBalanceHosts).toBe("random")
      expect(o.minProtocolVersion).toBe("3.0")
      expect(o.maxProtocolVersion).toBe("3.2")
      expect(o.channelBinding).toBe("require")
      expect(o.requirepeer).toBe("postgres")
      expect(o.serverParams).toEqual({ TimeZone: "Europe/Paris", geqo: "off", DateStyle: "ISO, DMY" })
      expect(o.warnings).toEqual([])
    })
  )

  it.effect("maps the deprecated PGREQUIRESSL to sslmode, below PGSSLMODE", () =>
    Effect.gen(function* () {
      const a = yield* resolveWith(undefined, { PGREQUIRESSL: "1" })
      expect(a.sslmode).toBe("require")
      expect(a.warnings.join()).toContain("deprecated")
      const b = yield* resolveWith(undefined, { PGREQUIRESSL: "0" })
      expect(b.sslmode).toBe("prefer")
      const c = yield* resolveWith(undefined, { PGREQUIRESSL: "1", PGSSLMODE: "disable" })
      expect(c.sslmode).toBe("disable")
      const d = yield* resolveWith("sslmode=verify-full", { PGREQUIRESSL: "1" })
      expect(d.sslmode).toBe("verify-full")
      const e = yield* failWith(undefined, { PGREQUIRESSL: "yes" })
      expect(e.key).toBe("requiressl")
    })
  )

  it.effect("accepts only UTF-8 client encodings", () =>
    Effect.gen(function* () {
      for (const enc of ["UTF8", "utf-8", "Unicode", "auto"]) {
        const o = yield* resolveWith(undefined, { PGCLIENTENCODING: enc })
        expect(o.clientEncoding).toBe("UTF8")
      }
      const e = yield* failWith(undefined, { PGCLIENTENCODING: "LATIN1" })
      expect(e.key).toBe("client_encoding")
      expect(e.reason).toBe("unsupported")
      expect(e.message).toContain("PGCLIENTENCODING")
    })
  )

  it.effect("keeps PGDATESTYLE's field order but forces ISO output", () =>
    Effect.gen(function* () {
      const a = yield* resolveWith(undefined, { PGDATESTYLE: "SQL, DMY" })
      expect(a.serverParams.DateStyle).toBe("ISO, DMY")
      expect(a.warnings).toHaveLength(1)
      expect(a.warnings[0]).toContain("sql")
      const b = yield* resolveWith(undefined, { PGDATESTYLE: "Postgres" })
      expect(b.serverParams.DateStyle).toBe("ISO")
      const c = yield* resolveWith(undefined, { PGDATESTYLE: "European" })
      expect(c.serverParams.DateStyle).toBe("ISO, DMY")
      expect(c.warnings).toEqual([])
      const e = yield* failWith(undefined, { PGDATESTYLE: "ISO, XYZ" })
      expect(e.key).toBe("PGDATESTYLE")
    })
  )

  it.effect("accepts the GSS and compression variables without acting on them", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith(undefined, {
        PGSSLCOMPRESSION: "0",
        PGGSSENCMODE: "prefer",
        PGGSSLIB: "sspi"
      })
      expect(o.gssencmode).toBe("prefer")
      expect(o.gsslib).toBe("sspi")
    })
  )
})

describe("precedence", () => {
  it.effect("explicit options > connection string > environment > defaults", () =>
    Effect.gen(function* () {
      const env = {
        PGHOST: "envhost",
        PGPORT: "1111",
        PGUSER: "envuser",
        PGDATABASE: "envdb",
        PGAPPNAME: "envapp"
      }
      const o = yield* resolveWith({ url: "postgresql://urluser@urlhost/urldb", database: "optdb" }, env)
      expect(o.hosts).toEqual([{ host: "urlhost", hostaddr: undefined, port: 1111 }])
      expect(o.user).toBe("urluser")
      expect(o.database).toBe("optdb")
      expect(o.applicationName).toBe("envapp")
    })
  )

  it.effect("a plain string input is a connection string", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("host=h user=u", { PGUSER: "envuser", PGDATABASE: "envdb" })
      expect(o.user).toBe("u")
      expect(o.database).toBe("envdb")
    })
  )

  it.effect("named options beat raw keywords, and connectionString is an alias of url", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith({
        connectionString: "host=h",
        keywords: { sslmode: "disable", application_name: "kw" },
        sslmode: "require"
      })
      expect(o.sslmode).toBe("require")
      expect(o.applicationName).toBe("kw")
      expect(o.hosts[0]!.host).toBe("h")
      const e = yield* failWith({ url: "host=a", connectionString: "host=b" })
      expect(e.key).toBe("url")
      const k = yield* failWith({ keywords: { nonsense: "1" } })
      expect(k.key).toBe("nonsense")
      expect(k.reason).toBe("unknown-key")
    })
  )

  it.effect("an empty value in the string blocks the environment and means the default", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("host=''", { PGHOST: "envhost" }, fakeSystem({ socketDirs: ["/tmp"] }))
      expect(o.hosts[0]!.host).toBe("/tmp")
    })
  )

  it.effect("explicit options accept hosts objects, lists, numbers and booleans", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith({
        hosts: [{ host: "a", port: 1 }, { hostaddr: "::1", port: "2" }, { host: "/sock" }],
        password: Redacted.make("s3cret"),
        sslpassword: "keypw",
        keepalives: false,
        keepalivesIdle: 30,
        keepalivesInterval: 5,
        keepalivesCount: 3,
        tcpUserTimeout: 1000,
        sslsni: false,
        connectTimeout: 1,
        requireAuth: ["scram-sha-256", "none"],
        replication: true,
        serverParams: { search_path: "app", timezone: "UTC" }
      })
      expect(o.hosts).toEqual([
        { host: "a", hostaddr: undefined, port: 1 },
        { host: "::1", hostaddr: "::1", port: 2 },
        { host: "/sock", hostaddr: undefined, port: 5432 }
      ])
      expect(secret(o.password)).toBe("s3cret")
      expect(secret(o.sslpassword)).toBe("keypw")
      expect(o.keepalives).toBe(false)
      expect([o.keepalivesIdle, o.keepalivesInterval, o.keepalivesCount, o.tcpUserTimeout]).toEqual([
        30, 5, 3, 1000
      ])
      expect(o.sslsni).toBe(false)
      expect(o.connectTimeout).toBe(2)
      expect(o.requireAuth?.allowed).toEqual(["scram-sha-256", "none"])
      expect(o.replication).toBe("true")
      expect(o.serverParams).toEqual({ search_path: "app", timezone: "UTC" })
      const e = yield* failWith({ hosts: [{ host: "a" }], port: 5 })
      expect(e.key).toBe("hosts")
      const n = yield* failWith({ connectTimeout: 1.5 })
      expect(n.key).toBe("connect_timeout")
    })
  )

  it.effect("explicit serverParams override PGTZ, whatever the spelling", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith({ serverParams: { timezone: "UTC" } }, { PGTZ: "Asia/Tokyo" })
      expect(o.serverParams).toEqual({ timezone: "UTC" })
    })
  )
})

describe("secrets", () => {
  it.effect("passwords are Redacted and do not show up when printed", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("postgresql://u:hunter2@h/d?sslpassword=keypass")
      expect(Redacted.isRedacted(o.password)).toBe(true)
      expect(String(o.password)).not.toContain("hunter2")
      expect(JSON.stringify(o)).not.toContain("hunter2")
      expect(JSON.stringify(o)).not.toContain("keypass")
    })
  )
})

describe("hosts, hostaddrs and ports", () => {
  it.effect("applies one port to every host", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("host=a,b,c port=6543")
      expect(o.hosts.map((h) => h.port)).toEqual([6543, 6543, 6543])
    })
  )

  it.effect("pairs port lists with hosts, empty entries meaning 5432", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("postgresql://a:1,b,[::1]:3/db")
      expect(o.hosts).toEqual([
        { host: "a", hostaddr: undefined, port: 1 },
        { host: "b", hostaddr: undefined, port: 5432 },
        { host: "::1", hostaddr: undefined, port: 3 }
      ])
    })
  )

  it.effect("refuses port and hostaddr lists that do not match the hosts", () =>
    Effect.gen(function* () {
      const p = yield* failWith("host=a,b,c port=1,2")
      expect(p.key).toBe("port")
      expect(p.reason).toBe("conflict")
      const a = yield* failWith("host=a,b hostaddr=10.0.0.1")
      expect(a.key).toBe("hostaddr")
      expect(a.reason).toBe("conflict")
    })
  )

  it.effect("uses hostaddr alone, with host name defaulting to the address", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("hostaddr=127.0.0.1,::1 port=1,2")
      expect(o.hosts).toEqual([
        { host: "127.0.0.1", hostaddr: "127.0.0.1", port: 1 },
        { host: "::1", hostaddr: "::1", port: 2 }
      ])
      const m = yield* resolveWith("host=db.example hostaddr=192.0.2.7")
      expect(m.hosts).toEqual([{ host: "db.example", hostaddr: "192.0.2.7", port: 5432 }])
      const skip = yield* resolveWith("host=a,b hostaddr=,192.0.2.8")
      expect(skip.hosts.map((h) => h.hostaddr)).toEqual([undefined, "192.0.2.8"])
    })
  )

  it.effect("refuses a hostaddr that is not a numeric address", () =>
    Effect.gen(function* () {
      const e = yield* failWith("hostaddr=db.example")
      expect(e.key).toBe("hostaddr")
      expect(e.reason).toBe("invalid-value")
    })
  )

  it.effect("refuses ports that are not 1-65535 integers", () =>
    Effect.gen(function* () {
      for (const bad of ["0", "65536", "abc", "12a", "-1"]) {
        const e = yield* failWith(`port=${bad}`)
        expect(e.key).toBe("port")
      }
      const env = yield* failWith(undefined, { PGPORT: "x" })
      expect(env.message).toContain("PGPORT")
    })
  )

  it.effect("keeps Unix-socket and abstract-socket hosts", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("host=/var/lib/postgresql,@abstract port=5433")
      expect(o.hosts.map((h) => h.host)).toEqual(["/var/lib/postgresql", "@abstract"])
    })
  )

  it.effect("refuses a NUL character in any value", () =>
    Effect.gen(function* () {
      const e = yield* failWith({ user: "a\u0000database=postgres" })
      expect(e.key).toBe("user")
      expect(e.reason).toBe("invalid-value")
    })
  )
})

describe("connect_timeout and keepalives", () => {
  it.effect("follows libpq: 0 or negative waits forever, 1 becomes 2", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, number]> = [
        ["0", 0],
        ["-5", 0],
        ["1", 2],
        ["2", 2],
        [" 10 ", 10]
      ]
      for (const [input, expected] of cases) {
        const o = yield* resolveWith({ keywords: { connect_timeout: input } })
        expect(o.connectTimeout).toBe(expected)
      }
      const e = yield* failWith("connect_timeout=10s")
      expect(e.key).toBe("connect_timeout")
    })
  )

  it.effect("keepalives is an integer switch; the timers are non-negative integers", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith(
        "keepalives=0 keepalives_idle=60 keepalives_interval=10 keepalives_count=5"
      )
      expect([o.keepalives, o.keepalivesIdle, o.keepalivesInterval, o.keepalivesCount]).toEqual([
        false,
        60,
        10,
        5
      ])
      expect((yield* resolveWith("keepalives=2")).keepalives).toBe(true)
      for (const k of [
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout"
      ]) {
        const e = yield* failWith(`${k}=x`)
        expect(e.key).toBe(k)
      }
      const neg = yield* failWith("keepalives_idle=-1")
      expect(neg.key).toBe("keepalives_idle")
    })
  )
})

describe("TLS settings", () => {
  it.effect("sslrootcert=system defaults sslmode to verify-full", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("sslrootcert=system")
      expect(o.sslmode).toBe("verify-full")
      expect(o.sslrootcert).toBe("system")
      const ok = yield* resolveWith("sslrootcert=system sslmode=verify-full")
      expect(ok.sslmode).toBe("verify-full")
    })
  )

  it.effect("sslrootcert=system refuses any weaker sslmode, from any source", () =>
    Effect.gen(function* () {
      for (const mode of ["disable", "allow", "prefer", "require", "verify-ca"]) {
        const e = yield* failWith(`sslrootcert=system sslmode=${mode}`)
        expect(e.key).toBe("sslmode")
        expect(e.reason).toBe("conflict")
      }
      const env = yield* failWith("sslrootcert=system", { PGSSLMODE: "require" })
      expect(env.key).toBe("sslmode")
    })
  )

  it.effect("a file sslrootcert leaves the default sslmode alone", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("sslrootcert=/etc/ssl/root.crt")
      expect(o.sslmode).toBe("prefer")
      const dot = yield* resolveWith("sslrootcert=./system")
      expect(dot.sslmode).toBe("prefer")
    })
  )

  it.effect("sslnegotiation=direct needs sslmode require or stronger", () =>
    Effect.gen(function* () {
      for (const mode of ["require", "verify-ca", "verify-full"]) {
        const o = yield* resolveWith(`sslnegotiation=direct sslmode=${mode}`)
        expect(o.sslnegotiation).toBe("direct")
      }
      for (const mode of ["disable", "allow", "prefer"]) {
        const e = yield* failWith(`sslnegotiation=direct sslmode=${mode}`)
        expect(e.key).toBe("sslnegotiation")
        expect(e.reason).toBe("conflict")
      }
      const dflt = yield* failWith("sslnegotiation=direct")
      expect(dflt.message).toContain("by default")
    })
  )

  it.effect("refuses an inverted TLS version range", () =>
    Effect.gen(function* () {
      const e = yield* failWith("ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2")
      expect(e.key).toBe("ssl_min_protocol_version")
      expect(e.reason).toBe("conflict")
      const o = yield* resolveWith("ssl_min_protocol_version=TLSv1 ssl_max_protocol_version=TLSv1.1")
      expect([o.sslMinProtocolVersion, o.sslMaxProtocolVersion]).toEqual(["TLSv1", "TLSv1.1"])
    })
  )
})

describe("protocol versions", () => {
  it.effect("accepts 3.0, 3.2 and latest, and refuses min > max", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("min_protocol_version=3.2 max_protocol_version=latest")
      expect([o.minProtocolVersion, o.maxProtocolVersion]).toEqual(["3.2", "3.2"])
      const l = yield* resolveWith("min_protocol_version=latest max_protocol_version=3.2")
      expect(l.minProtocolVersion).toBe("3.2")
      const e = yield* failWith("min_protocol_version=3.2")
      expect(e.key).toBe("min_protocol_version")
      expect(e.reason).toBe("conflict")
      const e2 = yield* failWith("min_protocol_version=3.2 max_protocol_version=3.0")
      expect(e2.key).toBe("min_protocol_version")
    })
  )
})

describe("require_auth", () => {
  it.effect("parses an allow-list", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("require_auth=scram-sha-256,none")
      expect(o.requireAuth).toEqual({
        negated: false,
        listed: ["scram-sha-256", "none"],
        allowed: ["scram-sha-256", "none"]
      })
    })
  )

  it.effect("parses a negated list into its complement", () =>
    Effect.gen(function* () {
      const o = yield* resolveWith("require_auth=!md5,!password")
      expect(o.requireAuth).toEqual({
        negated: true,
        listed: ["md5", "password"],
        allowed: ["gss", "sspi", "scram-sha-256", "none"]
      })
    })
  )

  it.effect("refuses mixed forms, unknown and repeated methods, and lists that allow nothing", () =>
    Effect.gen(function* () {
      const mixed = yield* failWith("require_auth=!md5,password")
      expect([mixed.key, mixed.reason]).toEqual(["require_auth", "conflict"])
      const unknown = yield* failWith("require_auth=kerberos")
      expect([unknown.key, unknown.reason]).toEqual(["require_auth", "invalid-value"])
      const twice = yield* failWith("require_auth=md5,md5")
      expect(twice.message).toContain("more than once")
      const nothing = yield* failWith("require_auth=!password,!md5,!gss,!sspi,!scram-sha-256,!none")
      expect(nothing.key).toBe("require_auth")
    })
  )
})

describe("enum validation names its key", () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ["sslmode", "sometimes"],
    ["sslnegotiation", "indirect"],
    ["channel_binding", "maybe"],
    ["gssencmode", "always"],
    ["target_session_attrs", "writable"],
    ["load_balance_hosts", "roundrobin"],
    ["min_protocol_version", "3.1"],
    ["max_protocol_version", "4.0"],
    ["ssl_min_protocol_version", "SSLv3"],
    ["ssl_max_protocol_version", "TLSv2"],
    ["sslcertmode", "demand"],
    ["sslsni", "yes"],
    ["sslcompression", "on"],
    ["gssdelegation", "true"],
    ["gsslib", "heimdal"],
    ["replication", "logical"],
    ["requiressl", "true"]
  ]
  for (const [key, value] of cases) {
    it.effect(`${key}=${value}`, () =>
      Effect.gen(function* () {
        const e = yield* failWith(`${key}=${value}`)
        expect(e._tag).toBe("PgConfigError")
        expect(e.key).toBe(key)
        expect(e.reason).toBe("invalid-value")
        expect(e.message).toContain(key)
      })
    )
  }

  it.effect("gssencmode=require is valid libpq but unsupported by pgline", () =>
    Effect.gen(function* () {
      const e = yield* failWith("gssencmode=require")
      expect([e.key, e.reason]).toEqual(["gssencmode", "unsupported"])
    })
  )

  it.effect("accepts every documented value", () =>
    Effect.gen(function* () {
      for (const m of ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const) {
        expect((yield* resolveWith(`sslmode=${m}`)).sslmode).toBe(m)
      }
      for (const t of ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"] as const) {
        expect((yield* resolveWith(`target_session_attrs=${t}`)).targetSessionAttrs).toBe(t)
      }
      for (const r of ["database", "on", "off", "true", "false", "yes", "no", "1", "0"]) {
        expect((yield* resolveWith(`replication=${r}`)).replication).toBe(r)
      }
    })
  )
})

describe("serverParams", () => {
  it.effect("refuses parameters that have a dedicated option, protocol options, and non-ISO DateStyle", () =>
    Effect.gen(function* () {
      for (const name of [
        "user",
        "database",
        "options",
        "replication",
        "application_name",
        "client_encoding"
      ]) {
        const e = yield* failWith({ serverParams: { [name]: "x" } })
        expect(e.key).toBe(`serverParams.${name}`)
        expect(e.reason).toBe("conflict")
      }
      const pq = yield* failWith({ serverParams: { "_pq_.ext": "1" } })
      expect(pq.reason).toBe("unsupported")
      const ds = yield* failWith({ serverParams: { DateStyle: "SQL, DMY" } })
      expect(ds.reason).toBe("unsupported")
      const ok = yield* resolveWith({ serverParams: { DateStyle: "ISO, MDY" } })
      expect(ok.serverParams.DateStyle).toBe("ISO, MDY")
    })
  )
})

describe("service files", () => {
  const serviceText = [
    "# comment",
    "[other]",
    "host=wrong",
    "",
    "[mydb]",
    "host=svc-host",
    "  port = 6432  ",
    "dbname=svcdb",
    "user=svcuser",
    "application_name=svcapp",
    "[later]",
    "host=later"
  ].join("\n")

  it.effect("reads the service named in the string from PGSERVICEFILE", () =>
    Effect.gen(function* () {
      const file = write("svc1.conf", serviceText)
      const o = yield* resolveWith("service=mydb", { PGSERVICEFILE: file })
      expect(o.hosts).toEqual([{ host: "svc-host", hostaddr: undefined, port: 6432 }])
      expect([o.database, o.user, o.applicationName, o.service]).toEqual([
        "svcdb",
        "svcuser",
        "svcapp",
        "mydb"
      ])
    })
  )

  it.effect("takes the service name from PGSERVICE", () =>
    Effect.gen(function* () {
      const file = write("svc2.conf", serviceText)
      const o = yield* resolveWith(undefined, { PGSERVICE: "mydb", PGSERVICEFILE: file })
      expect(o.hosts[0]!.host).toBe("svc-host")
      expect(o.service).toBe("mydb")
    })
  )

  it.effect("ranks the service below the string and options, above the environment", () =>
    Effect.gen(function* () {
      const file = write("svc3.conf", serviceText)
      const o = yield* resolveWith(
        { url: "postgresql://urlhost/?service=mydb", user: "optuser" },
        { PGSERVICEFILE: file, PGDATABASE: "envdb", PGAPPNAME: "envapp", PGOPTIONS: "-c x=1" }
      )
      expect(o.hosts[0]!.host).toBe("urlhost")
      expect(o.user).toBe("optuser")
      expect(o.database).toBe("svcdb")
      expect(o.applicationName).toBe("svcapp")
      expect(o.options).toBe("-c x=1")
    })
  )

  it.effect("finds ~/.pg_service.conf through HOME, then PGSYSCONFDIR/pg_service.conf", () =>
    Effect.gen(function* () {
      const home = path.join(tmp, "home1")
      write("home1/.pg_service.conf", "[user-svc]\nhost=from-home\n")
      write("sysconf1/pg_service.conf", "[sys-svc]\nhost=from-sysconf\n[user-svc]\nhost=shadowed\n")
      const env = { HOME: home, PGSYSCONFDIR: path.join(tmp, "sysconf1") }
      const a = yield* resolveWith("service=user-svc", env)
      expect(a.hosts[0]!.host).toBe("from-home")
      const b = yield* resolveWith("service=sys-svc", env)
      expect(b.hosts[0]!.host).toBe("from-sysconf")
    })
  )

  it.effect("the servicefile keyword names the user file", () =>
    Effect.gen(function* () {
      const file = write("svc-keyword.conf", "[k]\ndbname=kdb\n")
      const o = yield* resolveWith({ service: "k", servicefile: file })
      expect(o.database).toBe("kdb")
    })
  )

  it.effect("a missing service is an error naming it", () =>
    Effect.gen(function* () {
      const file = write("svc4.conf", serviceText)
      const e = yield* failWith("service=nope", { PGSERVICEFILE: file, PGSYSCONFDIR: path.join(tmp, "none") })
      expect(e.key).toBe("service")
      expect(e.reason).toBe("service-not-found")
      expect(e.message).toContain(`"nope"`)
      const noFiles = yield* failWith(undefined, { PGSERVICE: "ghost", HOME: path.join(tmp, "no-home") })
      expect(noFiles.message).toContain("ghost")
    })
  )

  it.effect("refuses nested services, unknown keywords and lines without =", () =>
    Effect.gen(function* () {
      const nested = write("svc-nested.conf", "[a]\nservice=b\n")
      const n = yield* failWith("service=a", { PGSERVICEFILE: nested })
      expect([n.key, n.reason]).toEqual(["service", "file"])
      const unknown = write("svc-unknown.conf", "[a]\nhots=x\n")
      const u = yield* failWith("service=a", { PGSERVICEFILE: unknown })
      expect(u.key).toBe("hots")
      expect(u.message).toContain("line 2")
      const noEq = write("svc-noeq.conf", "[a]\nhost\n")
      const q = yield* failWith("service=a", { PGSERVICEFILE: noEq })
      expect(q.reason).toBe("file")
    })
  )

  it.effect("validates values that come from a service file, naming the file", () =>
    Effect.gen(function* () {
      const file = write("svc-bad.conf", "[a]\nsslmode=sometimes\n")
      const e = yield* failWith("service=a", { PGSERVICEFILE: file })
      expect(e.key).toBe("sslmode")
      expect(e.message).toContain("svc-bad.conf")
    })
  )
})

describe("PgConfig.config", () => {
  const parseWith = (cfg: ReturnType<typeof PgConfig.config>, env: Record<string, string>) =>
    cfg.parse(ConfigProvider.fromEnv({ env })).pipe(Effect.provideService(PgConfig.System, fakeSystem()))

  it.effect("reads PG* variables and DATABASE_URL, the URL winning", () =>
    Effect.gen(function* () {
      const o = yield* parseWith(PgConfig.config(), {
        DATABASE_URL: "postgresql://urluser:pw@urlhost:7000/urldb",
        PGUSER: "envuser",
        PGAPPNAME: "envapp"
      })
      expect(o.hosts).toEqual([{ host: "urlhost", hostaddr: undefined, port: 7000 }])
      expect(o.user).toBe("urluser")
      expect(o.applicationName).toBe("envapp")
      expect(Redacted.isRedacted(o.password)).toBe(true)
      expect(secret(o.password)).toBe("pw")
    })
  )

  it.effect("nests every variable under a prefix", () =>
    Effect.gen(function* () {
      const o = yield* parseWith(PgConfig.config("ANALYTICS"), {
        ANALYTICS_PGHOST: "analytics-db",
        ANALYTICS_PGPASSWORD: "apw",
        PGHOST: "ignored",
        ANALYTICS_URL: "postgresql:///adb"
      })
      expect(o.hosts[0]!.host).toBe("analytics-db")
      expect(o.database).toBe("adb")
      expect(secret(o.password)).toBe("apw")
    })
  )

  it.effect("reports a PgConfigError as a ConfigError carrying it", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(parseWith(PgConfig.config(), { PGSSLMODE: "sometimes" }))
      expect(e._tag).toBe("ConfigError")
      expect(e.message).toContain("sslmode")
      const cause = (e.cause as { cause?: unknown }).cause
      expect(cause).toBeInstanceOf(PgConfig.PgConfigError)
    })
  )

  it.effect("is usable as an Effect with the ambient ConfigProvider", () =>
    Effect.gen(function* () {
      const o = yield* PgConfig.config().pipe(
        Effect.provideService(
          ConfigProvider.ConfigProvider,
          ConfigProvider.fromEnv({ env: { PGHOST: "ambient" } })
        ),
        Effect.provideService(PgConfig.System, fakeSystem())
      )
      expect(o.hosts[0]!.host).toBe("ambient")
    })
  )
})
