/**
 * Hermetic tests of the psql output formats in src/internal/format.ts: the aligned table (many
 * column types and their alignment, multi-line values and headers, wide and control characters,
 * empty results, zero-column results, NULL display, -t), the unaligned format (-A, -A -t, -F, -R,
 * -z/-0), the `Time:` line of \timing, and the display-width rules.
 *
 * Every expected table is what psql 18.6 printed for the same values: the comment above each
 * input is the query it came from, run as `psql -X [options] -c "<query>"` against a PostgreSQL 18
 * server, and the input holds the column names, type OIDs and text values that query returns.
 * No server is needed to run these tests.
 */
import { describe, expect, it } from "vitest"
import {
  defaultPrintSettings,
  displayWidth,
  formatTable,
  formatTiming,
  type PrintSettings,
  type TextResult
} from "../src/internal/format.ts"

const BOOL = 16
const INT8 = 20
const INT2 = 21
const INT4 = 23
const TEXT = 25
const OID = 26
const XID = 28
const CID = 29
const FLOAT4 = 700
const FLOAT8 = 701
const MONEY = 790
const INT4_ARRAY = 1007
const DATE = 1082
const NUMERIC = 1700
const XID8 = 5069

const result = (
  fields: ReadonlyArray<readonly [string, number]>,
  rows: ReadonlyArray<ReadonlyArray<string | null>>
): TextResult => ({ fields: fields.map(([name, typeOid]) => ({ name, typeOid })), rows })

/** psql's output as lines, each ended by a newline (so `out("a", "")` is "a\n\n"). */
const out = (...lines: ReadonlyArray<string>) => lines.map((line) => line + "\n").join("")

const settings = (overrides: Partial<PrintSettings>): PrintSettings => ({
  ...defaultPrintSettings,
  ...overrides
})
const aligned = defaultPrintSettings
const tuplesOnly = settings({ tuplesOnly: true })
const unaligned = settings({ format: "unaligned" })
const unalignedTuplesOnly = settings({ format: "unaligned", tuplesOnly: true })

// select 12345 as ab, true as b, 1.5::float8 as f, 'x'::text as longheader_text, 7::oid as o,
//   100::int8 as big, '{1,2}'::int[] as arr, 3::int2 as sm, 2.50::numeric as nu, 1 as "Mixed Case"
const manyTypes = result(
  [
    ["ab", INT4],
    ["b", BOOL],
    ["f", FLOAT8],
    ["longheader_text", TEXT],
    ["o", OID],
    ["big", INT8],
    ["arr", INT4_ARRAY],
    ["sm", INT2],
    ["nu", NUMERIC],
    ["Mixed Case", INT4]
  ],
  [["12345", "t", "1.5", "x", "7", "100", "{1,2}", "3", "2.50", "1"]]
)

// select * from (values (1, 'one'), (2, E'two\nlines'), (3, NULL)) as v(num, txt)
const values = result(
  [
    ["num", INT4],
    ["txt", TEXT]
  ],
  [
    ["1", "one"],
    ["2", "two\nlines"],
    ["3", null]
  ]
)

// select E'multi\nline' as m, 2 as k, null as n
const multiLine = result(
  [
    ["m", TEXT],
    ["k", INT4],
    ["n", TEXT]
  ],
  [["multi\nline", "2", null]]
)

// select 1 as "a<newline>bc", 'x' as "d<newline>e<newline>f", 'y' as g
const multiLineHeaders = result(
  [
    ["a\nbc", INT4],
    ["d\ne\nf", TEXT],
    ["g", TEXT]
  ],
  [["1", "x", "y"]]
)

// select '日本語' as 名前, 1 as id union all select 'ｱｲｳ', 22 union all select '😀x', 333
const wide = result(
  [
    ["名前", TEXT],
    ["id", INT4]
  ],
  [
    ["日本語", "1"],
    ["ｱｲｳ", "22"],
    ["😀x", "333"]
  ]
)

// select E'a\tb' as t, E'x\ry' as r, E'\x01z\x7f' as c, chr(133) || 'q' as u,
//   E'a\u0301b' as comb, E'\x01\tz' as tab
const controls = result(
  [
    ["t", TEXT],
    ["r", TEXT],
    ["c", TEXT],
    ["u", TEXT],
    ["comb", TEXT],
    ["tab", TEXT]
  ],
  [["a\tb", "x\ry", "\u0001z\u007f", "\u0085q", "a\u0301b", "\u0001\tz"]]
)

// select 1 as a, 'b' as bb where false
const empty = result(
  [
    ["a", INT4],
    ["bb", TEXT]
  ],
  []
)

// select
const zeroColumns = result([], [[]])
// select where false
const zeroColumnsNoRows = result([], [])
// select from generate_series(1,3)
const zeroColumnsThreeRows = result([], [[], [], []])

// select null::int as a, null as b, 'x' as c union all select 1, 'y', null
const nulls = result(
  [
    ["a", INT4],
    ["b", TEXT],
    ["c", TEXT]
  ],
  [
    [null, null, "x"],
    ["1", "y", null]
  ]
)

// select 1 as a, 'x|y' as b union all select 2, 'z'
const separators = result(
  [
    ["a", INT4],
    ["b", TEXT]
  ],
  [
    ["1", "x|y"],
    ["2", "z"]
  ]
)

// select 'p' || chr(131071) || 'q' as v, chr(65534) as w
const nonCharacters = result(
  [
    ["v", TEXT],
    ["w", TEXT]
  ],
  [["p\u{1ffff}q", "\ufffe"]]
)

describe("formatTable: aligned", () => {
  it("centres headers, right-aligns only the numeric types and ends with the footer and a blank line", () => {
    // as psql 18 prints it
    expect(formatTable(manyTypes, aligned)).toBe(
      out(
        "  ab   | b |  f  | longheader_text | o | big |  arr  | sm |  nu  | Mixed Case ",
        "-------+---+-----+-----------------+---+-----+-------+----+------+------------",
        " 12345 | t | 1.5 | x               | 7 | 100 | {1,2} |  3 | 2.50 |          1",
        "(1 row)",
        ""
      )
    )
  })

  it("right-aligns money, xid, xid8, cid and float4, and leaves date and bool left-aligned", () => {
    // select '1.5'::money as mmmmmmmm, '5'::xid as xxx, '5'::xid8 as x8, '5'::cid as ccc,
    //   1::float4 as f4, '2024-01-02'::date as d, 1::bool as bo
    const moreTypes = result(
      [
        ["mmmmmmmm", MONEY],
        ["xxx", XID],
        ["x8", XID8],
        ["ccc", CID],
        ["f4", FLOAT4],
        ["d", DATE],
        ["bo", BOOL]
      ],
      [["$1.50", "5", "5", "5", "1", "2024-01-02", "t"]]
    )
    // as psql 18 prints it
    expect(formatTable(moreTypes, aligned)).toBe(
      out(
        " mmmmmmmm | xxx | x8 | ccc | f4 |     d      | bo ",
        "----------+-----+----+-----+----+------------+----",
        "    $1.50 |   5 |  5 |   5 |  1 | 2024-01-02 | t",
        "(1 row)",
        ""
      )
    )
  })

  it("prints each line of a multi-line value on its own line, with + where it continues", () => {
    // as psql 18 prints it
    expect(formatTable(multiLine, aligned)).toBe(
      out("   m   | k | n ", "-------+---+---", " multi+| 2 | ", " line  |   | ", "(1 row)", "")
    )
    // as psql 18 prints it
    expect(formatTable(values, aligned)).toBe(
      out(
        " num |  txt  ",
        "-----+-------",
        "   1 | one",
        "   2 | two  +",
        "     | lines",
        "   3 | ",
        "(3 rows)",
        ""
      )
    )
  })

  it("handles trailing newlines, blank lines and empty strings in values", () => {
    // select E'a\n' as t, E'\n\nz' as u, '' as v, E'p\nq' as w
    const edgeLines = result(
      [
        ["t", TEXT],
        ["u", TEXT],
        ["v", TEXT],
        ["w", TEXT]
      ],
      [["a\n", "\n\nz", "", "p\nq"]]
    )
    // as psql 18 prints it
    expect(formatTable(edgeLines, aligned)).toBe(
      out(
        " t | u | v | w ",
        "---+---+---+---",
        " a+|  +|   | p+",
        "   |  +|   | q",
        "   | z |   | ",
        "(1 row)",
        ""
      )
    )
  })

  it("pads a continuing last column up to its + and a right-aligned last column on the left", () => {
    // select E'1\n22' as a, 5 as b, E'l\nmmm\nn' as c
    const lastColumn = result(
      [
        ["a", TEXT],
        ["b", INT4],
        ["c", TEXT]
      ],
      [["1\n22", "5", "l\nmmm\nn"]]
    )
    // as psql 18 prints it
    expect(formatTable(lastColumn, aligned)).toBe(
      out(
        " a  | b |  c  ",
        "----+---+-----",
        " 1 +| 5 | l  +",
        " 22 |   | mmm+",
        "    |   | n",
        "(1 row)",
        ""
      )
    )
    // select E'x\ny\nz' as t, 42 as n
    const rightLast = result(
      [
        ["t", TEXT],
        ["n", INT4]
      ],
      [["x\ny\nz", "42"]]
    )
    // as psql 18 prints it
    expect(formatTable(rightLast, aligned)).toBe(
      out(" t | n  ", "---+----", " x+| 42", " y+| ", " z | ", "(1 row)", "")
    )
  })

  it("centres each line of a multi-line header", () => {
    // as psql 18 prints it
    expect(formatTable(multiLineHeaders, aligned)).toBe(
      out(" a +| d+| g ", " bc | e+|   ", "    | f |   ", "----+---+---", "  1 | x | y", "(1 row)", "")
    )
  })

  it("gives East Asian wide characters two columns", () => {
    // as psql 18 prints it
    expect(formatTable(wide, aligned)).toBe(
      out(
        "  名前  | id  ",
        "--------+-----",
        " 日本語 |   1",
        " ｱｲｳ    |  22",
        " 😀x    | 333",
        "(3 rows)",
        ""
      )
    )
  })

  it("escapes control characters, expands tabs and gives combining marks no width", () => {
    // as psql 18 prints it
    expect(formatTable(controls, aligned)).toBe(
      out(
        "     t     |  r   |     c     |    u    | comb |    tab    ",
        "-----------+------+-----------+---------+------+-----------",
        " a       b | x\\ry | \\x01z\\x7F | \\u0085q | a\u0301b   | \\x01    z",
        "(1 row)",
        ""
      )
    )
  })

  it("escapes control characters in headers too", () => {
    // select 1 as "a<tab>b", 2 as "x<newline>", 'abc' as "e<U+0001>"
    const controlHeaders = result(
      [
        ["a\tb", INT4],
        ["x\n", INT4],
        ["e\u0001", TEXT]
      ],
      [["1", "2", "abc"]]
    )
    // as psql 18 prints it
    expect(formatTable(controlHeaders, aligned)).toBe(
      out(
        " a       b | x+| e\\x01 ",
        "           |   |       ",
        "-----------+---+-------",
        "         1 | 2 | abc",
        "(1 row)",
        ""
      )
    )
  })

  it("drops the supplementary planes' noncharacters, as psql's UTF-8 check does", () => {
    // as psql 18 prints it
    expect(formatTable(nonCharacters, aligned)).toBe(
      out(" v  | w ", "----+---", " pq | \ufffe", "(1 row)", "")
    )
  })

  it("prints the header, the rule and (0 rows) for an empty result", () => {
    // as psql 18 prints it
    expect(formatTable(empty, aligned)).toBe(out(" a | bb ", "---+----", "(0 rows)", ""))
  })

  it("prints a `--` rule and no header line for a result with no columns", () => {
    // as psql 18 prints them
    expect(formatTable(zeroColumns, aligned)).toBe(out("--", "(1 row)", ""))
    expect(formatTable(zeroColumnsNoRows, aligned)).toBe(out("--", "(0 rows)", ""))
    expect(formatTable(zeroColumnsThreeRows, aligned)).toBe(out("--", "(3 rows)", ""))
  })

  it("shows NULL as an empty string, or as the null display text", () => {
    // as psql 18 prints it
    expect(formatTable(nulls, aligned)).toBe(
      out(" a | b | c ", "---+---+---", "   |   | x", " 1 | y | ", "(2 rows)", "")
    )
    // as psql 18 prints it with -P null=(null)
    expect(formatTable(nulls, settings({ nullDisplay: "(null)" }))).toBe(
      out(
        "   a    |   b    |   c    ",
        "--------+--------+--------",
        " (null) | (null) | x",
        "      1 | y      | (null)",
        "(2 rows)",
        ""
      )
    )
    // as psql 18 prints it with -P null=(null)
    expect(formatTable(values, settings({ nullDisplay: "(null)" }))).toBe(
      out(
        " num |  txt   ",
        "-----+--------",
        "   1 | one",
        "   2 | two   +",
        "     | lines",
        "   3 | (null)",
        "(3 rows)",
        ""
      )
    )
  })

  it("-t drops the header, rule and footer but keeps the blank line and the headers' widths", () => {
    // as psql 18 prints them with -t
    expect(formatTable(manyTypes, tuplesOnly)).toBe(
      out(" 12345 | t | 1.5 | x               | 7 | 100 | {1,2} |  3 | 2.50 |          1", "")
    )
    expect(formatTable(values, tuplesOnly)).toBe(
      out("   1 | one", "   2 | two  +", "     | lines", "   3 | ", "")
    )
    expect(formatTable(multiLine, tuplesOnly)).toBe(out(" multi+| 2 | ", " line  |   | ", ""))
    expect(formatTable(multiLineHeaders, tuplesOnly)).toBe(out("  1 | x | y", ""))
    expect(formatTable(empty, tuplesOnly)).toBe("\n")
    expect(formatTable(zeroColumns, tuplesOnly)).toBe("\n")
  })

  it("copes with a large result", () => {
    // select i from generate_series(1,100000) i
    const many = result(
      [["i", INT4]],
      Array.from({ length: 100_000 }, (_, i) => [String(i + 1)])
    )
    const text = formatTable(many, aligned)
    // as psql 18 prints it (its first three and last four lines)
    expect(text.startsWith(out("   i    ", "--------", "      1"))).toBe(true)
    expect(text.endsWith(out("  99999", " 100000", "(100000 rows)", ""))).toBe(true)
    expect(text.split("\n")).toHaveLength(100_000 + 5)
  })
})

describe("formatTable: unaligned", () => {
  it("-A joins fields with | and ends with the footer, no blank line", () => {
    // as psql 18 prints them with -A
    expect(formatTable(manyTypes, unaligned)).toBe(
      out(
        "ab|b|f|longheader_text|o|big|arr|sm|nu|Mixed Case",
        "12345|t|1.5|x|7|100|{1,2}|3|2.50|1",
        "(1 row)"
      )
    )
    expect(formatTable(nulls, unaligned)).toBe(out("a|b|c", "||x", "1|y|", "(2 rows)"))
  })

  it("-A prints values and headers as they are: no escaping, no quoting", () => {
    // as psql 18 prints them with -A
    expect(formatTable(values, unaligned)).toBe(out("num|txt", "1|one", "2|two", "lines", "3|", "(3 rows)"))
    expect(formatTable(multiLine, unaligned)).toBe(out("m|k|n", "multi", "line|2|", "(1 row)"))
    expect(formatTable(multiLineHeaders, unaligned)).toBe(out("a", "bc|d", "e", "f|g", "1|x|y", "(1 row)"))
    expect(formatTable(separators, unaligned)).toBe(out("a|b", "1|x|y", "2|z", "(2 rows)"))
    expect(formatTable(wide, unaligned)).toBe(out("名前|id", "日本語|1", "ｱｲｳ|22", "😀x|333", "(3 rows)"))
    expect(formatTable(controls, unaligned)).toBe(
      out("t|r|c|u|comb|tab", "a\tb|x\ry|\u0001z\u007f|\u0085q|a\u0301b|\u0001\tz", "(1 row)")
    )
    expect(formatTable(nonCharacters, unaligned)).toBe(out("v|w", "pq|\ufffe", "(1 row)"))
  })

  it("-A -t prints the rows only", () => {
    // as psql 18 prints them with -A -t
    expect(formatTable(manyTypes, unalignedTuplesOnly)).toBe(out("12345|t|1.5|x|7|100|{1,2}|3|2.50|1"))
    expect(formatTable(values, unalignedTuplesOnly)).toBe(out("1|one", "2|two", "lines", "3|"))
  })

  it("-F and -R change the separators; the last record still ends with a newline", () => {
    // as psql 18 prints them with -A -F ,
    expect(formatTable(manyTypes, settings({ format: "unaligned", fieldSep: "," }))).toBe(
      out(
        "ab,b,f,longheader_text,o,big,arr,sm,nu,Mixed Case",
        "12345,t,1.5,x,7,100,{1,2},3,2.50,1",
        "(1 row)"
      )
    )
    // as psql 18 prints them with -A -F , -R ';'
    const commaSemicolon = settings({ format: "unaligned", fieldSep: ",", recordSep: ";" })
    expect(formatTable(separators, commaSemicolon)).toBe(out("a,b;1,x|y;2,z;(2 rows)"))
    expect(formatTable(values, commaSemicolon)).toBe(out("num,txt;1,one;2,two", "lines;3,;(3 rows)"))
    // as psql 18 prints it with -A -t -R ';'
    expect(formatTable(separators, settings({ format: "unaligned", tuplesOnly: true, recordSep: ";" }))).toBe(
      out("1|x|y;2|z")
    )
  })

  it("-z and -0 separate with NUL bytes, and -0 also ends the last record with one", () => {
    // as psql 18 prints it with -A -z -0
    expect(formatTable(separators, settings({ format: "unaligned", fieldSep: "\0", recordSep: "\0" }))).toBe(
      "a\u0000b\u00001\u0000x|y\u00002\u0000z\u0000(2 rows)\u0000"
    )
    // as psql 18 prints it with -A -t -0
    expect(
      formatTable(separators, settings({ format: "unaligned", tuplesOnly: true, recordSep: "\0" }))
    ).toBe("1|x|y\u00002|z\u0000")
  })

  it("shows NULL as the null display text", () => {
    // as psql 18 prints them with -A -P null=NULL and -A -P null=(null)
    expect(formatTable(nulls, settings({ format: "unaligned", nullDisplay: "NULL" }))).toBe(
      out("a|b|c", "NULL|NULL|x", "1|y|NULL", "(2 rows)")
    )
    expect(formatTable(values, settings({ format: "unaligned", nullDisplay: "(null)" }))).toBe(
      out("num|txt", "1|one", "2|two", "lines", "3|(null)", "(3 rows)")
    )
  })

  it("prints the header and (0 rows) for an empty result, and nothing with -t", () => {
    // as psql 18 prints them with -A and -A -t
    expect(formatTable(empty, unaligned)).toBe(out("a|bb", "(0 rows)"))
    expect(formatTable(empty, unalignedTuplesOnly)).toBe("")
  })

  it("prints an empty header line and the footer for a result with no columns, and nothing with -t", () => {
    // as psql 18 prints them with -A and -A -t
    expect(formatTable(zeroColumns, unaligned)).toBe(out("", "(1 row)"))
    expect(formatTable(zeroColumnsNoRows, unaligned)).toBe(out("", "(0 rows)"))
    expect(formatTable(zeroColumnsThreeRows, unaligned)).toBe(out("", "(3 rows)"))
    expect(formatTable(zeroColumns, unalignedTuplesOnly)).toBe("")
  })
})

describe("formatTiming", () => {
  // Each expected line is what psql 18.6's own timing printer wrote for the same number of
  // milliseconds (called directly under gdb, since a query cannot be made to take a day).
  it("prints milliseconds alone below one second", () => {
    expect(formatTiming(0.276)).toBe("Time: 0.276 ms")
    expect(formatTiming(0)).toBe("Time: 0.000 ms")
    expect(formatTiming(999.9994)).toBe("Time: 999.999 ms")
    // Rounds up to 1000.000 but is still under a second, so no clock reading.
    expect(formatTiming(999.9996)).toBe("Time: 1000.000 ms")
  })

  it("rounds an exact tie to even, as C's printf does", () => {
    expect(formatTiming(0.0625)).toBe("Time: 0.062 ms")
    expect(formatTiming(0.1875)).toBe("Time: 0.188 ms")
  })

  it("adds (mm:ss.fff) below an hour", () => {
    expect(formatTiming(1205.986)).toBe("Time: 1205.986 ms (00:01.206)")
    expect(formatTiming(61234.5678)).toBe("Time: 61234.568 ms (01:01.235)")
    // The seconds round up to 60.000 without carrying into the minutes, as in psql.
    expect(formatTiming(3599999.9)).toBe("Time: 3599999.900 ms (59:60.000)")
  })

  it("adds (hh:mm:ss.fff) below a day", () => {
    expect(formatTiming(3723004.5)).toBe("Time: 3723004.500 ms (01:02:03.005)")
    expect(formatTiming(86399999.9999)).toBe("Time: 86400000.000 ms (23:59:60.000)")
  })

  it("adds (N d hh:mm:ss.fff) from a day on", () => {
    expect(formatTiming(90061001)).toBe("Time: 90061001.000 ms (1 d 01:01:01.001)")
    expect(formatTiming(259200000)).toBe("Time: 259200000.000 ms (3 d 00:00:00.000)")
    expect(formatTiming(1000000000)).toBe("Time: 1000000000.000 ms (11 d 13:46:40.000)")
  })
})

describe("displayWidth", () => {
  // The widths psql 18.6 gives these strings when it sizes a column (read off its rule lines).
  it("counts printable ASCII one column each", () => {
    expect(displayWidth("")).toBe(0)
    expect(displayWidth("abc")).toBe(3)
  })

  it("advances a tab to the next multiple of 8", () => {
    expect(displayWidth("\t")).toBe(8)
    expect(displayWidth("a\tb")).toBe(9)
    expect(displayWidth("1234567\t")).toBe(8)
    expect(displayWidth("12345678\t")).toBe(16)
    // The tab stop is counted on the escaped text: \r is 2 columns, \x01 is 4.
    expect(displayWidth("\r\t")).toBe(8)
    expect(displayWidth("\u0001\tz")).toBe(9)
  })

  it("counts control characters as their escapes", () => {
    expect(displayWidth("x\ry")).toBe(4)
    expect(displayWidth("\u0001")).toBe(4)
    expect(displayWidth("\u007f")).toBe(4)
    expect(displayWidth("\u0085")).toBe(6)
  })

  it("gives wide characters 2 columns and combining or format characters none", () => {
    expect(displayWidth("日本語")).toBe(6)
    expect(displayWidth("한")).toBe(2)
    expect(displayWidth("\u3000")).toBe(2)
    expect(displayWidth("\uff01")).toBe(2)
    expect(displayWidth("😀")).toBe(2)
    expect(displayWidth("\u{20000}")).toBe(2)
    // Yijing hexagrams became wide in Unicode 16, which psql 18 follows.
    expect(displayWidth("\u4dc0")).toBe(2)
    expect(displayWidth("ｱｲｳ")).toBe(3)
    expect(displayWidth("é")).toBe(1)
    expect(displayWidth("a\u0301")).toBe(1)
    expect(displayWidth("\u00ad\u200b\ufe0f")).toBe(0)
    expect(displayWidth("\u{1fffe}")).toBe(0)
  })

  it("is the width of the widest line", () => {
    expect(displayWidth("ab\ncdef\ng")).toBe(4)
    expect(displayWidth("日本\nabc")).toBe(4)
  })
})
