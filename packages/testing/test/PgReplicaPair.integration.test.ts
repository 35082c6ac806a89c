/**
 * startReplicaPair / startStandby: the standby streams from the primary through its own slot,
 * serves the same roles and TLS as the primary, a second standby of the same primary works too,
 * stopping a standby removes its files and drops its slot while the primary runs on, and a server
 * that is not an embedded one of this package is refused with EmbeddedStartError.
 */
import { existsSync } from "node:fs"
import { dirname } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import pg from "pg"
import { startReplicaPair, startStandby } from "../src/index.ts"

type Pair = Awaited<ReturnType<typeof startReplicaPair>>

const rows = async (config: pg.ClientConfig, sql: string): Promise<Array<Record<string, unknown>>> => {
  const client = new pg.Client(config)
  await client.connect()
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>
  } finally {
    await client.end()
  }
}

describe("startReplicaPair", () => {
  let pair: Pair
  beforeAll(async () => {
    pair = await startReplicaPair()
  }, 120_000)
  afterAll(async () => {
    await pair?.stop()
  }, 60_000)

  it("the standby is in recovery and streams from the primary through its slot", async () => {
    const standby = await rows(
      { connectionString: pair.standby.info.url },
      "select pg_is_in_recovery() as recovery, status, sender_port, slot_name from pg_stat_wal_receiver"
    )
    expect(standby).toHaveLength(1)
    expect(standby[0]).toMatchObject({
      recovery: true,
      status: "streaming",
      sender_port: pair.primary.info.port
    })
    const slots = await rows(
      { connectionString: pair.primary.info.url },
      "select slot_name, active from pg_replication_slots"
    )
    expect(slots).toEqual([{ slot_name: standby[0]!["slot_name"], active: true }])
    const primary = await rows(
      { connectionString: pair.primary.info.url },
      "select pg_is_in_recovery() as recovery"
    )
    expect(primary).toEqual([{ recovery: false }])
  })

  it("the standby has the primary's roles and TLS (copied with its data)", async () => {
    const { standby } = pair
    const scram = standby.info.roles!.scram
    const tls = await rows(
      {
        host: "localhost",
        port: standby.info.port,
        database: "postgres",
        user: scram.user,
        password: scram.password,
        ssl: { ca: standby.info.ca!, rejectUnauthorized: true }
      },
      "select current_user as user, ssl from pg_stat_ssl where pid = pg_backend_pid()"
    )
    expect(tls).toEqual([{ user: scram.user, ssl: true }])
    // And its own Unix socket.
    expect(standby.info.socketDir).not.toBe(pair.primary.info.socketDir)
    const socket = await rows(
      { host: standby.info.socketDir!, port: standby.info.port, user: "postgres", database: "postgres" },
      "select pg_is_in_recovery() as recovery"
    )
    expect(socket).toEqual([{ recovery: true }])
  })

  it("a second standby of the same primary; stopping it removes its files and drops its slot", async () => {
    const second = await startStandby(pair.primary)
    const root = dirname(second.dataDir)
    expect(existsSync(root)).toBe(true)
    const slots = async () =>
      (await rows({ connectionString: pair.primary.info.url }, "select slot_name from pg_replication_slots"))
        .length
    expect(await slots()).toBe(2)
    const recovery = await rows(
      { connectionString: second.info.url },
      "select pg_is_in_recovery() as recovery"
    )
    expect(recovery).toEqual([{ recovery: true }])
    await second.stop()
    expect(existsSync(root)).toBe(false)
    expect(await slots()).toBe(1)
    // The primary and the first standby run on.
    const still = await rows({ connectionString: pair.standby.info.url }, "select 1 as one")
    expect(still).toEqual([{ one: 1 }])
  }, 120_000)

  it("refuses a server that is not an embedded one of this package", async () => {
    const notEmbedded = { ...pair.primary, info: { ...pair.primary.info, kind: "url" as const } }
    await expect(startStandby(notEmbedded)).rejects.toMatchObject({
      name: "EmbeddedStartError",
      message: expect.stringContaining("embedded server")
    })
  })
})
