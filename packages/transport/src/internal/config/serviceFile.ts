/**
 * Connection service files (pg_service.conf): INI sections of keyword=value lines.
 *
 * Rules kept from libpq: lines are trimmed; blank lines and lines starting with "#" are ignored;
 * keys must be connection keywords; `service` inside a service is refused (no nesting); the first
 * section with the wanted name wins. One leniency: whitespace around "=" is trimmed.
 */
import { configError } from "./error.ts"
import { isKeyword } from "./keywords.ts"

/**
 * Returns the settings of `[service]` in `text`, or undefined when the file has no such section.
 * `fileName` only appears in error messages.
 */
export const findService = (
  text: string,
  service: string,
  fileName: string
): Array<[string, string]> | undefined => {
  let inGroup = false
  let found: Array<[string, string]> | undefined
  const lines = text.split(/\r?\n/)
  for (let lineNo = 1; lineNo <= lines.length; lineNo++) {
    const line = lines[lineNo - 1]!.trim()
    if (line === "" || line.startsWith("#")) continue
    if (line.startsWith("[")) {
      if (found !== undefined) return found
      const close = line.indexOf("]")
      if (close < 0) {
        throw configError("service", "file", `syntax error in service file "${fileName}", line ${lineNo}`)
      }
      inGroup = line.slice(1, close) === service
      if (inGroup) found = []
      continue
    }
    if (!inGroup) continue
    const eq = line.indexOf("=")
    if (eq < 0) {
      throw configError("service", "file", `syntax error in service file "${fileName}", line ${lineNo}`)
    }
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    if (key === "service") {
      throw configError(
        "service",
        "file",
        `nested "service" specifications not supported in service file "${fileName}", line ${lineNo}`
      )
    }
    if (!isKeyword(key)) {
      throw configError(
        key,
        "file",
        `syntax error in service file "${fileName}", line ${lineNo}: invalid connection option "${key}"`
      )
    }
    found!.push([key, value])
  }
  return found
}
