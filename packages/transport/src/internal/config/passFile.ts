/**
 * The password file (~/.pgpass): `hostname:port:database:username:password` lines, `*` matching
 * anything in the first four fields, `\:` and `\\` escaping, "#" comment lines. The first matching
 * line wins. Pure: file access and the permission rule live in the caller.
 */

interface Entry {
  readonly fields: ReadonlyArray<{ readonly text: string; readonly wildcard: boolean }>
  readonly password: string
}

/** Splits one line into its four match fields and the (unescaped) password, or undefined. */
const parseLine = (line: string): Entry | undefined => {
  const fields: Array<{ text: string; wildcard: boolean }> = []
  let text = ""
  let escaped = false
  let i = 0
  for (; i < line.length && fields.length < 4; i++) {
    const c = line[i]!
    if (c === "\\" && i + 1 < line.length) {
      text += line[i + 1]
      escaped = true
      i++
    } else if (c === ":") {
      fields.push({ text, wildcard: text === "*" && !escaped })
      text = ""
      escaped = false
    } else {
      text += c
    }
  }
  if (fields.length < 4) return undefined
  let password = ""
  for (; i < line.length; i++) {
    const c = line[i]!
    if (c === "\\" && i + 1 < line.length) {
      password += line[i + 1]
      i++
    } else {
      password += c
    }
  }
  return { fields, password }
}

/**
 * Finds the password for (host, port, database, user) in the file's text. `host` must already be
 * the name libpq matches: "localhost" for the default socket directory or an unset host.
 */
export const findPassword = (
  text: string,
  host: string,
  port: string,
  database: string,
  user: string
): string | undefined => {
  const wanted = [host, port, database, user]
  for (const raw of text.split("\n")) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    if (line === "" || line.startsWith("#")) continue
    const entry = parseLine(line)
    if (entry === undefined) continue
    if (entry.fields.every((f, i) => f.wildcard || f.text === wanted[i])) return entry.password
  }
  return undefined
}
