/**
 * A streaming-replication standby of an embedded server, made without pg_basebackup (the embedded
 * binaries have only initdb, pg_ctl and postgres): a physical replication slot on the primary so
 * its WAL is kept, the low-level base backup API over SQL around a plain file copy of the data
 * directory, then backup_label, standby.signal and primary_conninfo in the copy, and `postgres`
 * on a port of its own. Ready once it accepts read-only connections, is in recovery, and shows a
 * row written on the primary after it started.
 */
import { randomBytes } from "node:crypto"
import {
  appendFileSync,
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { join, relative, sep } from "node:path"
import {
  type EmbeddedHandle,
  EmbeddedStartError,
  type EmbeddedVersion,
  launch,
  type ServerInfo,
  toolchain
} from "./embedded.ts"
import { type SimpleConnection, SimpleQueryError, simpleConnect } from "./simpleQuery.ts"

export interface StandbyOptions {
  /** Milliseconds to wait for the standby to start and catch up (default 30 s). */
  readonly startTimeout?: number
}

/**
 * Directories whose contents a base backup leaves out (the directories themselves are kept):
 * pg_wal (the standby streams what it needs from the slot), the primary's replication slots, and
 * runtime state that the server rebuilds.
 */
const emptied = new Set([
  "pg_wal",
  "pg_replslot",
  "pg_dynshmem",
  "pg_notify",
  "pg_serial",
  "pg_snapshots",
  "pg_stat_tmp",
  "pg_subtrans"
])

/** Top-level files a base backup leaves out: the running server's lock and command line. */
const skippedFiles = new Set(["postmaster.pid", "postmaster.opts"])

const copyFilter = (from: string) => (source: string) => {
  const rel = relative(from, source)
  if (rel === "") return true
  const parts = rel.split(sep)
  if (parts.length === 1) return !skippedFiles.has(rel)
  const top = parts[0]!
  if (!emptied.has(top)) return true
  // pg_wal/archive_status must exist for the standby's WAL receiver.
  return rel === join("pg_wal", "archive_status")
}

const chownTree = (path: string, user: { uid: number; gid: number }): void => {
  chownSync(path, user.uid, user.gid)
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name)
    if (entry.isDirectory()) chownTree(child, user)
    else chownSync(child, user.uid, user.gid)
  }
}

/** A conninfo value in single quotes, with ' and \ escaped. */
const conninfoValue = (s: string) => `'${s.replace(/[\\']/g, "\\$&")}'`

/** A literal for postgresql.auto.conf (single quotes doubled). */
const confValue = (s: string) => `'${s.replace(/'/g, "''")}'`

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const connectTo = (info: ServerInfo) =>
  simpleConnect({ host: info.host, port: info.port, user: info.user, database: info.database })

/**
 * Starts a hot standby streaming from `primary`, an embedded server started by this package (its
 * data directory and settings are needed). The standby has the primary's roles, passwords and TLS
 * certificates (they are copied with the data), its own port and Unix socket directory, and a
 * replication slot of its own on the primary. The returned handle's `stop` shuts the standby down,
 * removes its files and drops its slot; stop the standby before the primary.
 *
 * Fails with EmbeddedStartError when the primary is not an embedded server of this package, the
 * backup or the copy fails, or the standby does not start, enter recovery and catch up in time;
 * nothing is left behind then (the slot is dropped, the copy removed).
 */
export const startStandby = async (
  primary: EmbeddedHandle,
  options: StandbyOptions = {}
): Promise<EmbeddedHandle> => {
  const info = primary.info
  if (info.kind !== "embedded" || primary.settings === undefined || info.version === undefined) {
    throw new EmbeddedStartError(
      "a standby can only be made of an embedded server started by @pgline/testing"
    )
  }
  const timeout = options.startTimeout ?? 30_000
  const tools = toolchain(info.version as EmbeddedVersion)
  const user = tools.user
  const slot = `pgline_standby_${randomBytes(4).toString("hex")}`
  const root = mkdtempSync(join(tmpdir(), "pgline-pg-standby-"))
  const dataDir = join(root, "data")
  const socketDir = join(root, "sock")
  let source: SimpleConnection | undefined
  let stopStandby: (() => Promise<void>) | undefined
  const dropSlot = async () => {
    // Best effort: the slot is only active until the standby's WAL sender has gone.
    const deadline = Date.now() + 5_000
    let conn: SimpleConnection | undefined
    try {
      conn = await connectTo(info)
      for (;;) {
        const rows = await conn.query(
          `select pg_drop_replication_slot(slot_name) from pg_replication_slots
            where slot_name = '${slot}' and not active`
        )
        if (rows.length > 0) return
        const left = await conn.query(`select 1 from pg_replication_slots where slot_name = '${slot}'`)
        if (left.length === 0 || Date.now() > deadline) return
        await sleep(50)
      }
    } catch {
      // The primary may already be down: its slot goes with it.
    } finally {
      conn?.close()
    }
  }
  try {
    source = await connectTo(info)
    const versionNum = Number((await source.query("show server_version_num"))[0]?.[0])
    const modern = versionNum >= 150000
    // Reserve WAL now, so everything from before the backup's checkpoint stays until the standby streams it.
    await source.query(`select pg_create_physical_replication_slot('${slot}', true)`)
    await source.query(
      modern ? "select pg_backup_start('pgline', true)" : "select pg_start_backup('pgline', true, false)"
    )
    cpSync(primary.dataDir, dataDir, { recursive: true, filter: copyFilter(primary.dataDir) })
    const [stopped] = await source.query(
      modern
        ? "select labelfile, spcmapfile from pg_backup_stop(false)"
        : "select labelfile, spcmapfile from pg_stop_backup(false, false)"
    )
    source.close()
    source = undefined
    if (stopped === undefined || stopped[0] === null) {
      throw new EmbeddedStartError("the primary returned no backup label")
    }
    for (const dir of emptied) mkdirSync(join(dataDir, dir), { recursive: true })
    mkdirSync(join(dataDir, "pg_wal", "archive_status"), { recursive: true })
    writeFileSync(join(dataDir, "backup_label"), stopped[0])
    if (stopped[1]) writeFileSync(join(dataDir, "tablespace_map"), stopped[1])
    writeFileSync(join(dataDir, "standby.signal"), "")
    // In the data directory rather than on the command line, where the password would show in ps.
    const conninfo = [
      `host=${conninfoValue(info.host)}`,
      `port=${info.port}`,
      `user=${conninfoValue(info.user)}`,
      `password=${conninfoValue(info.password)}`,
      "application_name=pgline_standby",
      "sslmode=disable"
    ].join(" ")
    appendFileSync(
      join(dataDir, "postgresql.auto.conf"),
      `primary_conninfo = ${confValue(conninfo)}\nprimary_slot_name = ${confValue(slot)}\n`
    )
    mkdirSync(socketDir, { mode: 0o755 })
    writeFileSync(join(root, ".keep"), "")
    if (user) chownTree(root, user)
    chmodSync(dataDir, 0o700)
    chmodSync(root, 0o755)

    const server = await launch({
      tools,
      dataDir,
      root,
      settings: { ...primary.settings, unix_socket_directories: socketDir, hot_standby: "on" },
      ready: /ready to accept read-only connections/,
      startTimeout: timeout
    })
    stopStandby = server.stop
    const standbyInfo: ServerInfo = {
      ...info,
      url: info.url.replace(`:${info.port}/`, `:${server.port}/`),
      port: server.port,
      socketDir
    }
    await caughtUp(info, standbyInfo, slot, timeout, server.log)
    return {
      info: standbyInfo,
      dataDir,
      pid: server.pid,
      stop: async () => {
        await server.stop()
        await dropSlot()
      },
      log: server.log,
      settings: primary.settings
    }
  } catch (error) {
    source?.close()
    if (stopStandby) await stopStandby()
    else rmSync(root, { recursive: true, force: true })
    await dropSlot()
    throw error instanceof EmbeddedStartError
      ? error
      : new EmbeddedStartError(
          `the standby did not start: ${error instanceof Error ? error.message : String(error)}`
        )
  }
}

/**
 * Waits until the standby is in recovery and shows a row the primary wrote after the standby
 * started (so it streams, not only replays its backup), then drops the probe table.
 */
const caughtUp = async (
  primaryInfo: ServerInfo,
  standbyInfo: ServerInfo,
  slot: string,
  timeout: number,
  log: () => string
): Promise<void> => {
  const deadline = Date.now() + timeout
  const primary = await connectTo(primaryInfo)
  const standby = await connectTo(standbyInfo)
  const table = `pgline_probe_${slot}`
  try {
    const [recovery] = await standby.query("select pg_is_in_recovery()")
    if (recovery?.[0] !== "t") throw new EmbeddedStartError("the standby is not in recovery")
    const token = randomBytes(8).toString("hex")
    await primary.query(`create table ${table} (token text)`)
    await primary.query(`insert into ${table} values ('${token}')`)
    for (;;) {
      try {
        const rows = await standby.query(`select 1 from ${table} where token = '${token}'`)
        if (rows.length === 1) break
      } catch (error) {
        // 42P01: the table's creation has not been replayed yet.
        if (!(error instanceof SimpleQueryError && error.fields?.code === "42P01")) throw error
      }
      if (Date.now() > deadline) {
        throw new EmbeddedStartError(`the standby did not catch up within ${timeout} ms:\n${log()}`)
      }
      await sleep(20)
    }
    await primary.query(`drop table ${table}`)
  } finally {
    primary.close()
    standby.close()
  }
}
