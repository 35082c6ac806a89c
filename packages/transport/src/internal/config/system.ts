/**
 * The few facts about the machine configuration needs: the OS user, its home directory, and
 * small synchronous file reads (service and password files are a few hundred bytes, read once per
 * resolve or connect). Everything goes through this record so tests can run without touching the
 * real home directory; the environment itself is read through Effect's ConfigProvider instead.
 */
import * as fs from "node:fs"
import * as os from "node:os"

/** What `PgConfigSystem.stat` reports about a file (the password file's permissions are checked like libpq's). */
export interface FileInfo {
  readonly isFile: boolean
  /** Permission bits (st_mode & 0o7777). */
  readonly mode: number
}

/** The operating system as configuration sees it (user name, home directory, files); replace it to test configuration without touching the real one. */
export interface PgConfigSystem {
  /** The effective OS user's name (libpq's default `user`), if known. */
  readonly userName: () => string | undefined
  /** The user's home directory when HOME is unset (libpq falls back to the passwd entry). */
  readonly homeDir: () => string | undefined
  /** File contents as UTF-8, or undefined when the file does not exist or cannot be read. */
  readonly readFile: (path: string) => string | undefined
  /** Type and permissions of a path, or undefined when it does not exist. */
  readonly stat: (path: string) => FileInfo | undefined
  /** Whether the permission check of the password file applies (not on Windows, as in libpq). */
  readonly checkPermissions: boolean
}

export const nodeSystem: PgConfigSystem = {
  userName: () => {
    try {
      return os.userInfo().username
    } catch {
      return undefined
    }
  },
  homeDir: () => {
    try {
      return os.userInfo().homedir || os.homedir() || undefined
    } catch {
      return undefined
    }
  },
  readFile: (path) => {
    try {
      return fs.readFileSync(path, "utf8")
    } catch {
      return undefined
    }
  },
  stat: (path) => {
    try {
      const st = fs.statSync(path)
      return { isFile: st.isFile(), mode: st.mode & 0o7777 }
    } catch {
      return undefined
    }
  },
  checkPermissions: process.platform !== "win32"
}
