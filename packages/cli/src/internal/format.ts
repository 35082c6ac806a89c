/**
 * Prints query results exactly as psql 18 writes them to stdout when it runs a script: the
 * default aligned table (border 1, ASCII line style) and the unaligned format of `-A`, each with
 * or without `-t` (tuples only), `-F` and `-R`, and the `Time: …` line of `\timing`. Given the
 * same column names, type OIDs and text values, the output is byte-for-byte what psql 18.6
 * prints, so a script's output can be diffed against psql's.
 *
 * Deliberately not covered: expanded mode (`\x`), the wrapped, CSV, HTML, LaTeX and troff
 * formats, borders 0 and 2, the Unicode line styles, titles, `\pset footer off`, numeric locale,
 * the pager, and the command tags printed after a result (the caller prints those). Values arrive
 * as the server's text output; choosing the text of a NULL is left to `nullDisplay`.
 */

/** The `\pset` options this module honours, as set by `-A`, `-t`, `-F`, `-R` and `\pset null`. */
export interface PrintSettings {
  readonly format: "aligned" | "unaligned"
  /** `-t`: no header, no rule, no `(N rows)` footer. */
  readonly tuplesOnly: boolean
  /** Between fields in unaligned format (`-F`; `-z` is "\0"). */
  readonly fieldSep: string
  /** Between records in unaligned format (`-R`; `-0` is "\0"). */
  readonly recordSep: string
  /** What a NULL looks like (`\pset null`). */
  readonly nullDisplay: string
}

/** psql's settings when no option changes them. */
export const defaultPrintSettings: PrintSettings = {
  format: "aligned",
  tuplesOnly: false,
  fieldSep: "|",
  recordSep: "\n",
  nullDisplay: ""
}

export interface TextResult {
  readonly fields: ReadonlyArray<{ readonly name: string; readonly typeOid: number }>
  /** Each row's values as the server's text output (null for SQL NULL), in column order. */
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>
}

/**
 * The table exactly as psql 18 prints it for a TUPLES_OK result in this format, footer and
 * trailing blank line included (everything up to and including the final newline).
 */
export const formatTable = (result: TextResult, settings: PrintSettings): string =>
  settings.format === "aligned" ? formatAligned(result, settings) : formatUnaligned(result, settings)

/**
 * psql's `Time: …` line for an elapsed time in milliseconds, without the newline. Under a second
 * it is the bare milliseconds; from a second on psql adds a clock reading, `(mm:ss.fff)` below an
 * hour, `(hh:mm:ss.fff)` below a day, and `(N d hh:mm:ss.fff)` beyond.
 */
export const formatTiming = (ms: number): string => {
  const head = `Time: ${fixed3(ms)} ms`
  if (ms < 1000) return head
  // The same double arithmetic as psql, in the same order, so the seconds round the same way
  // (59.9996 s shows as `(00:60.000)` there too).
  let seconds = ms / 1000
  let minutes = Math.floor(seconds / 60)
  seconds -= 60 * minutes
  const secs = fixed3(seconds).padStart(6, "0")
  if (minutes < 60) return `${head} (${two(minutes)}:${secs})`
  let hours = Math.floor(minutes / 60)
  minutes -= 60 * hours
  if (hours < 24) return `${head} (${two(hours)}:${two(minutes)}:${secs})`
  const days = Math.floor(hours / 24)
  hours -= 24 * days
  return `${head} (${days.toFixed(0)} d ${two(hours)}:${two(minutes)}:${secs})`
}

/**
 * Display width of a string as psql computes it: a tab advances to the next multiple of 8, `\r`
 * takes 2 columns (it is shown as `\r`), other ASCII control characters 4 (`\xHH`), C1 controls 6
 * (`\uXXXX`), East Asian wide and fullwidth characters 2, combining and format characters 0. For
 * a string of several lines it is the width of the widest line, as for a table cell.
 */
export const displayWidth = (s: string): number => cellWidth(prepare(s))

// ---------------------------------------------------------------------------------------------
// Aligned format

/**
 * psql right-aligns only these column types (int8, int2, int4, oid, xid, cid, float4, float8,
 * money, numeric, xid8); everything else, bool and arrays of numbers included, is left-aligned.
 */
const rightAligned = new Set([20, 21, 23, 26, 28, 29, 700, 701, 790, 1700, 5069])

const formatAligned = (result: TextResult, settings: PrintSettings): string => {
  const { fields, rows } = result
  const ncols = fields.length
  const last = ncols - 1
  const right = fields.map((field) => rightAligned.has(field.typeOid))
  const headers = fields.map((field) => prepare(field.name))

  // Headers count towards the widths even with -t, which prints no header.
  const headerWidths = headers.map(cellWidth)
  const widths = [...headerWidths]
  // Cells in row-major order; most are one line printed as is, so they stay plain strings and
  // their widths sit in a typed array rather than in an object per cell.
  const cells: Array<Cell> = new Array(rows.length * ncols)
  const cellWidths = new Int32Array(rows.length * ncols)
  for (let i = 0, index = 0; i < rows.length; i++) {
    const row = rows[i]
    for (let j = 0; j < ncols; j++, index++) {
      const cell = prepare(row[j] ?? settings.nullDisplay)
      const width = cellWidth(cell)
      cells[index] = cell
      cellWidths[index] = width
      if (width > widths[j]) widths[j] = width
    }
  }

  const out: Array<string> = []
  if (!settings.tuplesOnly) {
    // A header of several lines is centred line by line; `+` after a header line says that
    // header continues below.
    const height = maxOf(headers.map(cellHeight))
    for (let k = 0; k < height; k++) {
      let line = ""
      for (let j = 0; j < ncols; j++) {
        const header = headers[j]
        const lines = cellHeight(header)
        if (k < lines) {
          const pad = widths[j] - lineWidth(header, k, headerWidths[j])
          const left = Math.floor(pad / 2)
          line += " " + spaces(left) + lineText(header, k) + spaces(pad - left)
          line += k < lines - 1 ? "+" : " "
        } else {
          line += " " + spaces(widths[j]) + " "
        }
        if (j < last) line += "|"
      }
      out.push(line)
    }
    // With no columns at all this is `--`, and there is no header line above it.
    out.push("-" + widths.map((width) => "-".repeat(width)).join("-+-") + "-")
  }

  for (let i = 0; i < rows.length; i++) {
    const base = i * ncols
    // Every line of a multi-line value gets its own output line; shorter cells are blank below.
    let height = ncols > 0 ? 1 : 0
    for (let j = 0; j < ncols; j++) height = Math.max(height, cellHeight(cells[base + j]))
    for (let k = 0; k < height; k++) {
      let line = ""
      for (let j = 0; j < ncols; j++) {
        const cell = cells[base + j]
        const lines = cellHeight(cell)
        const isLast = j === last
        const continues = k < lines - 1
        line += " "
        if (k < lines) {
          const text = lineText(cell, k)
          const pad = spaces(widths[j] - lineWidth(cell, k, cellWidths[base + j]))
          // psql pads a left-aligned last column only when a `+` has to line up after it, so
          // data lines carry no trailing spaces.
          if (right[j]) line += pad + text
          else line += isLast && !continues ? text : text + pad
        } else if (!isLast) {
          line += spaces(widths[j])
        }
        if (continues) line += "+"
        else if (!isLast) line += " "
        if (!isLast) line += "|"
      }
      out.push(line)
    }
  }

  if (!settings.tuplesOnly) out.push(rowCount(rows.length))
  // The blank line after the table stays with -t; only the footer goes.
  return out.join("\n") + (out.length > 0 ? "\n\n" : "\n")
}

// ---------------------------------------------------------------------------------------------
// Unaligned format

const formatUnaligned = (result: TextResult, settings: PrintSettings): string => {
  const { fields, rows } = result
  const { fieldSep, recordSep } = settings
  // Values go out as they are (no escaping, no quoting); psql only drops the code points it
  // rejects as invalid (see `isDropped`).
  const records: Array<string> = []
  if (!settings.tuplesOnly) records.push(fields.map((field) => withoutDropped(field.name)).join(fieldSep))
  // A result with no columns prints no records at all, however many rows it has.
  if (fields.length > 0) {
    for (const row of rows) {
      records.push(fields.map((_, j) => withoutDropped(row[j] ?? settings.nullDisplay)).join(fieldSep))
    }
  }
  if (!settings.tuplesOnly) records.push(rowCount(rows.length))
  if (records.length === 0) return ""
  // The last record ends with a newline whatever -R says, except that a NUL separator (-0) also
  // ends the last record, as `find -print0` does.
  return records.join(recordSep) + (recordSep === "\0" ? "\0" : "\n")
}

const rowCount = (n: number) => (n === 1 ? "(1 row)" : `(${n} rows)`)

// ---------------------------------------------------------------------------------------------
// Cell rendering and display width

/**
 * A value as the aligned format prints it: the string itself when it is one line that psql
 * prints unchanged (the common case), else its rewritten lines.
 */
type Cell = string | Rendered

interface Rendered {
  /** The lines as psql prints them (escapes made, tabs expanded). */
  readonly lines: ReadonlyArray<string>
  /** The display width of each line. */
  readonly widths: ReadonlyArray<number>
}

const cellHeight = (cell: Cell) => (typeof cell === "string" ? 1 : cell.lines.length)
const lineText = (cell: Cell, k: number) => (typeof cell === "string" ? cell : cell.lines[k])
/** `whole` is the cell's width, which is its only line's width for a plain string. */
const lineWidth = (cell: Cell, k: number, whole: number) =>
  typeof cell === "string" ? whole : cell.widths[k]
const cellWidth = (cell: Cell) => (typeof cell === "string" ? plainWidth(cell) : maxOf(cell.widths))

/** Anything that makes psql rewrite a value: newlines, tabs and other control characters. */
const rewritten = /[\u0000-\u001f\u007f-\u009f]/

const prepare = (s: string): Cell => (rewritten.test(s) || hasDropped(s) ? render(s) : s)

/** The width of a string with nothing to rewrite: the sum of its characters' widths. */
const plainWidth = (s: string): number => {
  let width = 0
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i)
    if (unit < 0x7f) width += 1
    else {
      const cp = s.codePointAt(i)!
      if (cp > 0xffff) i++
      width += charWidth(cp)
    }
  }
  return width
}

/** The width of one character that is not a control character. */
const charWidth = (cp: number): number =>
  cp < 0x300 ? (cp === 0xad ? 0 : 1) : inRanges(zeroWidth, cp) ? 0 : inRanges(doubleWidth, cp) ? 2 : 1

/**
 * Splits a value at its newlines and makes each line printable the way psql's aligned format
 * does: `\r` becomes the two characters `\r`, other control characters `\xHH` or `\uXXXX`, and a
 * tab the spaces up to the next multiple of 8 (counted on the escaped line, as psql counts it).
 */
const render = (s: string): Rendered => {
  const lines: Array<string> = []
  const widths: Array<number> = []
  let line = ""
  let width = 0
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (cp >= 0x20 && cp < 0x7f) {
      line += ch
      width += 1
    } else if (cp === 0x0a) {
      lines.push(line)
      widths.push(width)
      line = ""
      width = 0
    } else if (cp === 0x09) {
      const n = 8 - (width % 8)
      line += spaces(n)
      width += n
    } else if (cp === 0x0d) {
      line += "\\r"
      width += 2
    } else if (cp < 0x20 || cp === 0x7f) {
      line += "\\x" + hex(cp, 2)
      width += 4
    } else if (cp < 0xa0) {
      line += "\\u" + hex(cp, 4)
      width += 6
    } else if (!isDropped(cp)) {
      line += ch
      width += charWidth(cp)
    }
  }
  lines.push(line)
  widths.push(width)
  return { lines, widths }
}

/**
 * psql silently removes U+nFFFE and U+nFFFF of the supplementary planes (1 to 16) from every
 * value and column name it prints, in every format (it validates the text as UTF-8 and treats
 * these as invalid); the BMP's U+FFFE and U+FFFF stay.
 */
const isDropped = (cp: number) => cp > 0xffff && (cp & 0xfffe) === 0xfffe
const astral = /[\u{10000}-\u{10ffff}]/u
const astralAll = /[\u{10000}-\u{10ffff}]/gu
const hasDropped = (s: string): boolean => {
  if (!astral.test(s)) return false
  for (const ch of s) if (isDropped(ch.codePointAt(0)!)) return true
  return false
}
const withoutDropped = (s: string): string =>
  hasDropped(s) ? s.replace(astralAll, (ch) => (isDropped(ch.codePointAt(0)!) ? "" : ch)) : s

/**
 * The code points psql 18 shows with width 0 and width 2, as ranges of hexadecimal code points
 * (`a-b` or a single one). They were measured by having psql 18.6 print every code point from
 * U+00A0 to U+10FFFF and reading the column widths it chose, so they follow its Unicode 16
 * tables, including where those join ranges across unassigned code points. Width 0 is the
 * combining marks and format characters (soft hyphen, zero-width space, variation selectors, …);
 * width 2 is East Asian Wide and Fullwidth.
 */
const zeroWidth = parseRanges(`
ad 300-36f 483-489 591-5bd 5bf 5c1-5c2 5c4-5c5 5c7 600-605 610-61a 61c 64b-65f 670 6d6-6dd
6df-6e4 6e7-6e8 6ea-6ed 70f 711 730-74a 7a6-7b0 7eb-7f3 7fd 816-819 81b-823 825-827 829-82d
859-85b 890-89f 8ca-902 93a 93c 941-948 94d 951-957 962-963 981 9bc 9c1-9c4 9cd 9e2-9e3 9fe-a02
a3c a41-a51 a70-a71 a75 a81-a82 abc ac1-ac8 acd ae2-ae3 afa-b01 b3c b3f b41-b44 b4d-b56 b62-b63
b82 bc0 bcd c00 c04 c3c c3e-c40 c46-c56 c62-c63 c81 cbc cbf cc6 ccc-ccd ce2-ce3 d00-d01 d3b-d3c
d41-d44 d4d d62-d63 d81 dca dd2-dd6 e31 e34-e3a e47-e4e eb1 eb4-ebc ec8-ece f18-f19 f35 f37 f39
f71-f7e f80-f84 f86-f87 f8d-fbc fc6 102d-1030 1032-1037 1039-103a 103d-103e 1058-1059 105e-1060
1071-1074 1082 1085-1086 108d 109d 135d-135f 1712-1714 1732-1733 1752-1753 1772-1773 17b4-17b5
17b7-17bd 17c6 17c9-17d3 17dd 180b-180f 1885-1886 18a9 1920-1922 1927-1928 1932 1939-193b
1a17-1a18 1a1b 1a56 1a58-1a60 1a62 1a65-1a6c 1a73-1a7f 1ab0-1b03 1b34 1b36-1b3a 1b3c 1b42
1b6b-1b73 1b80-1b81 1ba2-1ba5 1ba8-1ba9 1bab-1bad 1be6 1be8-1be9 1bed 1bef-1bf1 1c2c-1c33
1c36-1c37 1cd0-1cd2 1cd4-1ce0 1ce2-1ce8 1ced 1cf4 1cf8-1cf9 1dc0-1dff 200b-200f 202a-202e
2060-206f 20d0-20f0 2cef-2cf1 2d7f 2de0-2dff 302a-302d 3099-309a a66f-a672 a674-a67d a69e-a69f
a6f0-a6f1 a802 a806 a80b a825-a826 a82c a8c4-a8c5 a8e0-a8f1 a8ff a926-a92d a947-a951 a980-a982
a9b3 a9b6-a9b9 a9bc-a9bd a9e5 aa29-aa2e aa31-aa32 aa35-aa36 aa43 aa4c aa7c aab0 aab2-aab4
aab7-aab8 aabe-aabf aac1 aaec-aaed aaf6 abe5 abe8 abed fb1e fe00-fe0f fe20-fe2f feff fff9-fffb
101fd 102e0 10376-1037a 10a01-10a0f 10a38-10a3f 10ae5-10ae6 10d24-10d27 10d69-10d6d 10eab-10eac
10efc-10eff 10f46-10f50 10f82-10f85 11001 11038-11046 11070 11073-11074 1107f-11081 110b3-110b6
110b9-110ba 110bd 110c2-110cd 11100-11102 11127-1112b 1112d-11134 11173 11180-11181 111b6-111be
111c9-111cc 111cf 1122f-11231 11234 11236-11237 1123e 11241 112df 112e3-112ea 11300-11301
1133b-1133c 11340 11366-11374 113bb-113c0 113ce 113d0 113d2 113e1-113e2 11438-1143f 11442-11444
11446 1145e 114b3-114b8 114ba 114bf-114c0 114c2-114c3 115b2-115b5 115bc-115bd 115bf-115c0
115dc-115dd 11633-1163a 1163d 1163f-11640 116ab 116ad 116b0-116b5 116b7 1171d 1171f 11722-11725
11727-1172b 1182f-11837 11839-1183a 1193b-1193c 1193e 11943 119d4-119db 119e0 11a01-11a0a
11a33-11a38 11a3b-11a3e 11a47 11a51-11a56 11a59-11a5b 11a8a-11a96 11a98-11a99 11c30-11c3d 11c3f
11c92-11ca7 11caa-11cb0 11cb2-11cb3 11cb5-11cb6 11d31-11d45 11d47 11d90-11d91 11d95 11d97
11ef3-11ef4 11f00-11f01 11f36-11f3a 11f40 11f42 11f5a 13430-13440 13447-13455 1611e-16129
1612d-1612f 16af0-16af4 16b30-16b36 16f4f 16f8f-16f92 16fe4 1bc9d-1bc9e 1bca0-1bca3 1cf00-1cf46
1d167-1d169 1d173-1d182 1d185-1d18b 1d1aa-1d1ad 1d242-1d244 1da00-1da36 1da3b-1da6c 1da75 1da84
1da9b-1daaf 1e000-1e02a 1e08f 1e130-1e136 1e2ae 1e2ec-1e2ef 1e4ec-1e4ef 1e5ee-1e5ef 1e8d0-1e8d6
1e944-1e94a e0001-e01ef
`)
const doubleWidth = parseRanges(`
1100-115f 231a-231b 2329-232a 23e9-23ec 23f0 23f3 25fd-25fe 2614-2615 2630-2637 2648-2653 267f
268a-268f 2693 26a1 26aa-26ab 26bd-26be 26c4-26c5 26ce 26d4 26ea 26f2-26f3 26f5 26fa 26fd 2705
270a-270b 2728 274c 274e 2753-2755 2757 2795-2797 27b0 27bf 2b1b-2b1c 2b50 2b55 2e80-2e99
2e9b-2ef3 2f00-2fd5 2ff0-3029 302e-303e 3041-3096 309b-30ff 3105-312f 3131-318e 3190-31e5
31ef-321e 3220-3247 3250-a48c a490-a4c6 a960-a97c ac00-d7a3 f900-faff fe10-fe19 fe30-fe52
fe54-fe66 fe68-fe6b ff01-ff60 ffe0-ffe6 16fe0-16fe3 16ff0-16ff1 17000-187f7 18800-18cd5
18cff-18d08 1aff0-1aff3 1aff5-1affb 1affd-1affe 1b000-1b122 1b132 1b150-1b152 1b155 1b164-1b167
1b170-1b2fb 1d300-1d356 1d360-1d376 1f004 1f0cf 1f18e 1f191-1f19a 1f200-1f202 1f210-1f23b
1f240-1f248 1f250-1f251 1f260-1f265 1f300-1f320 1f32d-1f335 1f337-1f37c 1f37e-1f393 1f3a0-1f3ca
1f3cf-1f3d3 1f3e0-1f3f0 1f3f4 1f3f8-1f43e 1f440 1f442-1f4fc 1f4ff-1f53d 1f54b-1f54e 1f550-1f567
1f57a 1f595-1f596 1f5a4 1f5fb-1f64f 1f680-1f6c5 1f6cc 1f6d0-1f6d2 1f6d5-1f6d7 1f6dc-1f6df
1f6eb-1f6ec 1f6f4-1f6fc 1f7e0-1f7eb 1f7f0 1f90c-1f93a 1f93c-1f945 1f947-1f9ff 1fa70-1fa7c
1fa80-1fa89 1fa8f-1fac6 1face-1fadc 1fadf-1fae9 1faf0-1faf8 20000-2fffd 30000-3fffd
`)

function parseRanges(table: string): Uint32Array {
  const tokens = table.trim().split(/\s+/)
  const ranges = new Uint32Array(tokens.length * 2)
  tokens.forEach((token, i) => {
    const [first, last = first] = token.split("-")
    ranges[2 * i] = Number.parseInt(first, 16)
    ranges[2 * i + 1] = Number.parseInt(last, 16)
  })
  return ranges
}

const inRanges = (ranges: Uint32Array, cp: number): boolean => {
  let lo = 0
  let hi = ranges.length / 2 - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (cp < ranges[2 * mid]) hi = mid - 1
    else if (cp > ranges[2 * mid + 1]) lo = mid + 1
    else return true
  }
  return false
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const spaces = (n: number) => (n > 0 ? " ".repeat(n) : "")
const hex = (n: number, digits: number) => n.toString(16).toUpperCase().padStart(digits, "0")
const two = (n: number) => String(n).padStart(2, "0")

/** The largest number, 0 for none (a spread would overflow the stack on a big result). */
const maxOf = (ns: ReadonlyArray<number>): number => {
  let max = 0
  for (const n of ns) if (n > max) max = n
  return max
}

/**
 * `%.3f` as C's printf writes it. toFixed agrees except on an exact tie, which it rounds away
 * from zero where printf rounds to even (0.0625 → `0.062`). A double is exactly halfway between two
 * thousandths only when it is an odd number of sixteenths.
 */
const fixed3 = (x: number): string => {
  if (!Number.isInteger(x * 16) || Number.isInteger(x * 8)) return x.toFixed(3)
  let thousandths = Math.floor(x * 1000)
  if (thousandths % 2 !== 0) thousandths += 1
  return (thousandths / 1000).toFixed(3)
}
