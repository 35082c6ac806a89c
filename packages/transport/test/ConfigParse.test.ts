/**
 * Hermetic: connection-string parsing only (no environment, no files). Cases come from the
 * "Connection Strings" section of libpq's documentation, libpq's own URI regression inputs, and
 * hostile inputs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { type PgConfigError, parseConnectionString } from "../src/PgConfig.ts"

const parse = (s: string): Readonly<Record<string, string>> => Effect.runSync(parseConnectionString(s))
const fail = (s: string): PgConfigError => {
  const r = Effect.runSync(Effect.result(parseConnectionString(s)))
  if (Result.isSuccess(r))
    throw new Error(`expected ${JSON.stringify(s)} to fail, got ${JSON.stringify(r.success)}`)
  return r.failure
}

describe("keyword/value strings (libpq docs)", () => {
  it("parses the documented example", () => {
    expect(parse("host=localhost port=5432 dbname=mydb connect_timeout=10")).toEqual({
      host: "localhost",
      port: "5432",
      dbname: "mydb",
      connect_timeout: "10"
    })
  })

  it("allows whitespace around = and single-quoted values with spaces", () => {
    expect(parse("  host = localhost\tapplication_name = 'a value'  ")).toEqual({
      host: "localhost",
      application_name: "a value"
    })
  })

  it("unescapes \\' and \\\\ inside quotes, and writes empty values as ''", () => {
    expect(parse(`password='it\\'s a \\\\ test' options=''`)).toEqual({
      password: "it's a \\ test",
      options: ""
    })
  })

  it("unescapes backslashes in unquoted values too", () => {
    expect(parse(`password=a\\ b\\'c`)).toEqual({ password: "a b'c" })
  })

  it("takes comma-separated host and port lists verbatim", () => {
    expect(parse("host=host1,host2,host3 port=5432,5433,5434")).toEqual({
      host: "host1,host2,host3",
      port: "5432,5433,5434"
    })
  })

  it("keeps the last value of a repeated keyword", () => {
    expect(parse("dbname=a dbname=b")).toEqual({ dbname: "b" })
  })

  it("skips whitespace after =, as libpq does", () => {
    expect(parse("host= port=5432")).toEqual({ host: "port=5432" })
  })

  it("accepts the empty string (all defaults)", () => {
    expect(parse("")).toEqual({})
    expect(parse("   ")).toEqual({})
  })

  it("rejects an unknown keyword, naming it", () => {
    const e = fail("host=x hots=y")
    expect(e._tag).toBe("PgConfigError")
    expect(e.key).toBe("hots")
    expect(e.reason).toBe("unknown-key")
  })

  it("rejects a keyword without =", () => {
    const e = fail("host")
    expect(e.key).toBe("connection string")
    expect(e.reason).toBe("syntax")
    expect(e.message).toContain(`"host"`)
  })

  it("rejects an unterminated quoted value", () => {
    expect(fail("password='abc").reason).toBe("syntax")
    expect(fail(`password='abc\\'`).reason).toBe("syntax")
  })

  it("rejects an empty keyword", () => {
    expect(fail("=value").reason).toBe("unknown-key")
  })

  it("rejects removed keywords such as tty", () => {
    expect(fail("tty=/dev/null").key).toBe("tty")
  })
})

describe("URIs (libpq docs)", () => {
  const cases: ReadonlyArray<readonly [string, Record<string, string>]> = [
    ["postgresql://", {}],
    ["postgresql://localhost", { host: "localhost" }],
    ["postgresql://localhost:5433", { host: "localhost", port: "5433" }],
    ["postgresql://localhost/mydb", { host: "localhost", dbname: "mydb" }],
    ["postgresql://user@localhost", { user: "user", host: "localhost" }],
    ["postgresql://user:secret@localhost", { user: "user", password: "secret", host: "localhost" }],
    [
      "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
      {
        user: "other",
        host: "localhost",
        dbname: "otherdb",
        connect_timeout: "10",
        application_name: "myapp"
      }
    ],
    [
      "postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp",
      {
        host: "host1,host2",
        port: "123,456",
        dbname: "somedb",
        target_session_attrs: "any",
        application_name: "myapp"
      }
    ],
    ["postgresql:///mydb?host=localhost&port=5433", { dbname: "mydb", host: "localhost", port: "5433" }],
    [
      "postgresql://user@localhost:5433/mydb?options=-c%20synchronous_commit%3Doff",
      { user: "user", host: "localhost", port: "5433", dbname: "mydb", options: "-c synchronous_commit=off" }
    ],
    ["postgresql://[2001:db8::1234]/database", { host: "2001:db8::1234", dbname: "database" }],
    ["postgresql:///dbname?host=/var/lib/postgresql", { dbname: "dbname", host: "/var/lib/postgresql" }],
    ["postgresql://%2Fvar%2Flib%2Fpostgresql/dbname", { host: "/var/lib/postgresql", dbname: "dbname" }],
    ["postgresql://host1:5432,host2:5433,host3:5434/", { host: "host1,host2,host3", port: "5432,5433,5434" }],
    ["postgres://localhost/mydb", { host: "localhost", dbname: "mydb" }]
  ]
  for (const [uri, expected] of cases) {
    it(`parses ${uri}`, () => {
      expect(parse(uri)).toEqual(expected)
    })
  }

  it("translates the JDBC-style ssl=true into sslmode=require", () => {
    expect(parse("postgresql:///dbname?ssl=true")).toEqual({ dbname: "dbname", sslmode: "require" })
    expect(fail("postgresql:///dbname?ssl=false").key).toBe("ssl")
  })

  it("is equivalent to the keyword/value form for multiple hosts", () => {
    expect(parse("postgresql://host1:1,host2:2,host3:3/")).toEqual(parse("host=host1,host2,host3 port=1,2,3"))
  })
})

describe("URIs (libpq regression inputs)", () => {
  const ok: ReadonlyArray<readonly [string, Record<string, string>]> = [
    [
      "postgresql://uri-user:secret@host:12345/db",
      { user: "uri-user", password: "secret", host: "host", port: "12345", dbname: "db" }
    ],
    ["postgresql://uri-user@host:12345/db", { user: "uri-user", host: "host", port: "12345", dbname: "db" }],
    ["postgresql://uri-user@host/db", { user: "uri-user", host: "host", dbname: "db" }],
    ["postgresql://host:12345/db", { host: "host", port: "12345", dbname: "db" }],
    ["postgresql://uri-user@host:12345/", { user: "uri-user", host: "host", port: "12345" }],
    ["postgresql://uri-user@", { user: "uri-user" }],
    ["postgresql://host:12345", { host: "host", port: "12345" }],
    ["postgresql://host/", { host: "host" }],
    ["postgresql://?hostaddr=127.0.0.1", { hostaddr: "127.0.0.1" }],
    ["postgresql://example.com?hostaddr=63.1.2.4", { host: "example.com", hostaddr: "63.1.2.4" }],
    ["postgresql://%68ost/", { host: "host" }],
    ["postgresql://host/db?user=uri-user", { host: "host", dbname: "db", user: "uri-user" }],
    [
      "postgresql://host/db?u%73er=someotheruser&port=12345",
      { host: "host", dbname: "db", user: "someotheruser", port: "12345" }
    ],
    ["postgresql://host:12345?user=uri-user", { host: "host", port: "12345", user: "uri-user" }],
    ["postgresql://host?", { host: "host" }],
    ["postgresql://[::1]:12345/db", { host: "::1", port: "12345", dbname: "db" }],
    ["postgresql://[::1]/db", { host: "::1", dbname: "db" }],
    ["postgresql://[2001:db8::1234]/", { host: "2001:db8::1234" }],
    ["postgresql://[::1]", { host: "::1" }],
    ["postgres://", {}],
    ["postgres:///", {}],
    ["postgres:///db", { dbname: "db" }],
    ["postgres://uri-user@/db", { user: "uri-user", dbname: "db" }],
    ["postgres://?host=/path/to/socket/dir", { host: "/path/to/socket/dir" }],
    ["postgres://@host", { host: "host" }],
    ["postgres://host:/", { host: "host" }],
    ["postgres://:12345/", { port: "12345" }],
    ["postgres://otheruser@?host=/no/such/directory", { user: "otheruser", host: "/no/such/directory" }],
    ["postgres://otheruser@/?host=/no/such/directory", { user: "otheruser", host: "/no/such/directory" }],
    [
      "postgres://otheruser@:12345?host=/no/such/socket/path",
      { user: "otheruser", port: "12345", host: "/no/such/socket/path" }
    ],
    [
      "postgres://otheruser@:12345/db?host=/path/to/socket",
      { user: "otheruser", port: "12345", dbname: "db", host: "/path/to/socket" }
    ],
    ["postgres://:12345?host=/path/to/socket", { port: "12345", host: "/path/to/socket" }]
  ]
  for (const [uri, expected] of ok) {
    it(`parses ${uri}`, () => {
      expect(parse(uri)).toEqual(expected)
    })
  }

  const bad: ReadonlyArray<readonly [string, string, string]> = [
    ["postgresql://host/db?u%7aer=someotheruser&port=12345", "uzer", "unknown-key"],
    ["postgresql://host?uzer=", "uzer", "unknown-key"],
    ["postgre://", "connection string", "syntax"],
    ["postgres://[::1", "connection string", "syntax"],
    ["postgres://[]", "connection string", "syntax"],
    ["postgres://[::1]z", "connection string", "syntax"],
    ["postgresql://host?zzz", "connection string", "syntax"],
    ["postgresql://host?value1&value2", "connection string", "syntax"],
    ["postgresql://host?key=key=value", "connection string", "syntax"],
    ["postgres://host?dbname=%XXfoo", "connection string", "syntax"],
    ["postgresql://a%00b", "connection string", "syntax"],
    ["postgresql://%zz", "connection string", "syntax"],
    ["postgresql://%1", "connection string", "syntax"],
    ["postgresql://%", "connection string", "syntax"],
    // Deviation: libpq accepts this and fails at name resolution; pgline refuses a non-IPv6 literal.
    ["postgresql://[200z:db8::1234]/", "host", "invalid-value"]
  ]
  for (const [uri, key, reason] of bad) {
    it(`rejects ${uri}`, () => {
      const e = fail(uri)
      expect(e.key).toBe(key)
      expect(e.reason).toBe(reason)
    })
  }
})

describe("URIs: percent-encoding, IPv6, multiple hosts", () => {
  it("decodes unicode user names and passwords holding @ : /", () => {
    expect(parse("postgresql://%C3%BCser%E2%82%AC:p%40ss%3Aw%2Frd%20%25@host/db")).toEqual({
      user: "üser€",
      password: "p@ss:w/rd %",
      host: "host",
      dbname: "db"
    })
  })

  it("passes raw non-ASCII characters through", () => {
    expect(parse("postgresql://José:Ñandú@host/bäse")).toEqual({
      user: "José",
      password: "Ñandú",
      host: "host",
      dbname: "bäse"
    })
  })

  it("splits userinfo at the last @ (an unencoded @ in a password still works)", () => {
    expect(parse("postgresql://user:p@ss@host/db")).toEqual({
      user: "user",
      password: "p@ss",
      host: "host",
      dbname: "db"
    })
  })

  it("keeps an empty password distinct from none", () => {
    expect(parse("postgresql://user:@host")).toEqual({ user: "user", password: "", host: "host" })
  })

  it("does not treat + as a space", () => {
    expect(parse("postgresql://host/db?application_name=a+b")).toEqual({
      host: "host",
      dbname: "db",
      application_name: "a+b"
    })
  })

  it("decodes keys and values of query parameters", () => {
    expect(parse("postgresql://host?applic%61tion_name=%E6%97%A5%E6%9C%AC")).toEqual({
      host: "host",
      application_name: "日本"
    })
  })

  it("refuses percent-encoded bytes that are not UTF-8", () => {
    expect(fail("postgresql://u%FF@host").reason).toBe("syntax")
  })

  it("parses IPv6 lists with ports, and a zone id", () => {
    expect(parse("postgresql://[::1]:5432,[fe80::1%25eth0]:5433,[2001:db8::2]/db")).toEqual({
      host: "::1,fe80::1%eth0,2001:db8::2",
      port: "5432,5433,",
      dbname: "db"
    })
  })

  it("mixes host names, IPv4, IPv6 and socket paths in one list", () => {
    expect(parse("postgres://a.example:1,10.0.0.2,[::1]:3,%2Ftmp/db")).toEqual({
      host: "a.example,10.0.0.2,::1,/tmp",
      port: "1,,3,",
      dbname: "db"
    })
  })

  it("accepts an abstract-namespace socket as a percent-encoded host", () => {
    expect(parse("postgresql://%40pgsock/db")).toEqual({ host: "@pgsock", dbname: "db" })
  })

  it("decodes a percent-encoded database name containing /", () => {
    expect(parse("postgresql://host/my%2Fdb%3F")).toEqual({ host: "host", dbname: "my/db?" })
  })

  it("lets query parameters override the hierarchical part", () => {
    expect(parse("postgresql://u1@h1/d1?user=u2&dbname=d2")).toEqual({ user: "u2", host: "h1", dbname: "d2" })
  })
})

describe("hostile inputs", () => {
  it("rejects a %00 smuggled into any part", () => {
    for (const s of [
      "postgresql://u%00@h",
      "postgresql://h/d%00b",
      "postgresql://h?options=a%00b",
      "postgresql://h?a%00=b"
    ]) {
      expect(fail(s).reason).toBe("syntax")
    }
  })

  it("does not treat a URI lookalike as a URI", () => {
    expect(fail("POSTGRES://host").key).toBe("connection string")
    expect(fail("http://host").reason).toBe("syntax")
  })

  it("does not treat a newline as part of a keyword", () => {
    expect(parse("host=a\ndbname=b")).toEqual({ host: "a", dbname: "b" })
  })

  it("rejects injected keywords hidden in a quoted value only as values", () => {
    expect(parse("application_name='x sslmode=disable'")).toEqual({ application_name: "x sslmode=disable" })
  })

  it("survives very long input", () => {
    const long = "a".repeat(100_000)
    expect(parse(`application_name=${long}`)).toEqual({ application_name: long })
    expect(fail(`postgresql://h?${"x".repeat(10_000)}`).reason).toBe("syntax")
  })

  it("rejects __proto__ and other prototype keys as unknown keywords", () => {
    expect(fail("__proto__=x").reason).toBe("unknown-key")
    expect(fail("postgresql://h?constructor=x").reason).toBe("unknown-key")
  })
})

describe("secrets in error messages", () => {
  // Every malformed URI here carries the password "s3cr3t" (or its encoding): no message may show it.
  const cases = [
    "postgres://user:s3cr3t@[::1/db",
    "postgres://user:s3cr3t@[]/db",
    "postgres://user:s3cr3t@[zz]/db",
    "postgres://user:s3cr3t@[::1]x/db",
    "postgres://user:s3cr3t@host%zz/db",
    "postgres://user:s3cr3t%zz@host/db",
    "postgres://user:s3cr3t%00@host/db",
    "postgres://user:s3cr3t%ff@host/db",
    "postgres://host/db?password=s3cr3t=x",
    "postgres://host/db?password=s3cr3t%00",
    "postgres://host/db?password=s3cr3t%zz",
    "postgres://user:s3cr3t@host/db?sslmode"
  ]
  for (const uri of cases) {
    it(`does not echo the password: ${uri.replace("s3cr3t", "…")}`, () => {
      const error = fail(uri)
      expect(error.message).not.toContain("s3cr3t")
      expect(String(error)).not.toContain("s3cr3t")
    })
  }

  it("still names what is wrong, with the password shown as ***", () => {
    expect(fail("postgres://user:s3cr3t@[::1/db").message).toContain("postgres://user:***@[::1/db")
  })
})
