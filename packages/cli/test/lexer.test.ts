/**
 * The script reader: where statements end (quotes, E-strings, dollar quotes, nested comments,
 * parentheses, BEGIN ATOMIC bodies, `\;`), what a meta-command's arguments are (quotes, doubled
 * quotes and escapes, kept double quotes, variables, `\\` ending a command), variable
 * substitution in SQL (`:v` read as script text, `:'v'`, `:"v"`, unknown or self-naming left as
 * typed, `::` casts untouched), backslash escapes with standard_conforming_strings off, the
 * line each item is reported on, empty lines dropped from the text sent, and the query buffer a
 * meta-command leaves behind (seed). Hermetic.
 */
import { describe, expect, it } from "vitest"
import { type Item, LexError, ScriptLexer } from "../src/internal/lexer.ts"

const all = (text: string, vars: Record<string, string> = {}): Array<Item> => {
  const lexer = new ScriptLexer(text, (name) => vars[name])
  const items: Array<Item> = []
  for (let item = lexer.next(); item !== undefined; item = lexer.next()) items.push(item)
  return items
}

const sql = (text: string, line: number): Item => ({ _tag: "Sql", text, line })

describe("statements", () => {
  it("end at a top-level semicolon, not inside quotes, dollar quotes, comments or parentheses", () => {
    const script = [
      "select 'a;b', E'it\\'s;', \"we;ird\" from t;",
      "select $$x;y$$, $tag$ $$ ; $tag$;",
      "select 1 /* a ; /* nested ; */ still ; */ + 2;",
      "select (select 1; ) ;",
      "select 3 -- trailing ; comment",
      ";"
    ].join("\n")
    expect(all(script).map((i) => (i._tag === "Sql" ? i.text : i.command))).toEqual([
      "select 'a;b', E'it\\'s;', \"we;ird\" from t;",
      "select $$x;y$$, $tag$ $$ ; $tag$;",
      "select 1 /* a ; /* nested ; */ still ; */ + 2;",
      "select (select 1; ) ;",
      "select 3 -- trailing ; comment\n;"
    ])
  })

  it("read dollar-quote tags of any length and with non-ASCII letters", () => {
    const long = `$${"t".repeat(70)}$`
    const script = `select ${long} a; b ${long};\nselect $función$ c; d $función$;\nselect 2;\n`
    expect(all(script).map((i) => (i._tag === "Sql" ? i.text : i.command))).toEqual([
      `select ${long} a; b ${long};`,
      "select $función$ c; d $función$;",
      "select 2;"
    ])
  })

  it("with standard_conforming_strings off, a backslash escapes the quote in a plain string too", () => {
    const text = "select 'it\\'s; fine';\n"
    const off = new ScriptLexer(
      text,
      () => undefined,
      () => false
    )
    expect(off.next()).toEqual(sql("select 'it\\'s; fine';", 1))
    const on = new ScriptLexer(
      text,
      () => undefined,
      () => true
    )
    expect(on.next()).toEqual(sql("select 'it\\'s;", 1))
  })

  it("read a :name's value as script text: its `;` ends the statement, its quote opens a string", () => {
    const vars = { q: "select 1 as a;", r: "select 2; select 3", bad: "select 'x", self: ":self" }
    expect(all(":q\n\\echo done\n:r;\n:bad';\nselect :self;\n", vars)).toEqual([
      sql("select 1 as a;", 1),
      { _tag: "Meta", command: "echo", args: ["done"], buffer: "", line: 2 },
      sql("select 2;", 3),
      sql("select 3;", 3),
      sql("select 'x';", 4),
      sql("select :self;", 5)
    ])
  })

  it("keep a BEGIN ATOMIC body whole, but a plain BEGIN is a statement of its own", () => {
    const script =
      "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end;\nbegin;\nselect 1;"
    expect(all(script)).toEqual([
      sql(
        "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end;",
        1
      ),
      sql("begin;", 2),
      sql("select 1;", 3)
    ])
  })

  it("are reported on the line of their semicolon; leading comments and empty lines are not sent", () => {
    const script = "-- a comment\n\nselect 1,\n\n  2;\n\n\nselect 3\n"
    expect(all(script)).toEqual([sql("select 1,\n  2;", 5), sql("select 3", 8)])
  })

  it("\\; and \\: put the character in the statement", () => {
    expect(all("select 1 \\; select 2;\nselect '\\:x';")).toEqual([
      sql("select 1 ; select 2;", 1),
      sql("select '\\:x';", 2)
    ])
  })

  it("substitute :v, :'v' and :\"v\" outside quotes; unknown names and :: casts stay", () => {
    const vars = { t: "people", who: "O'Brien", back: "a\\b", col: 'my "col"' }
    expect(
      all("select :col, :\"col\", :'who', :'back', ':t', 1::int, :unknown from :t;", vars).map((i) =>
        i._tag === "Sql" ? i.text : ""
      )
    ).toEqual([
      "select my \"col\", \"my \"\"col\"\"\", 'O''Brien', E'a\\\\b', ':t', 1::int, :unknown from people;"
    ])
  })
})

describe("meta-commands", () => {
  it("take arguments to the end of the line or the next backslash (quotes open anywhere in one), the SQL before them as the buffer", () => {
    const items = all("select $1 \\bind 'a b' it''s \"q d\" :n\n\\g", { n: "5" })
    expect(items).toEqual([
      { _tag: "Meta", command: "bind", args: ["a b", "its", '"q d"', "5"], buffer: "select $1", line: 1 },
      { _tag: "Meta", command: "g", args: [], buffer: "", line: 2 }
    ])
  })

  it("quoted arguments: doubled quotes and escapes; :'v' keeps its quotes; \\\\ ends a command", () => {
    const items = all("\\echo 'it''s' 'tab\\there' :'v' \\\\ select 1;", { v: "x" })
    expect(items).toEqual([
      { _tag: "Meta", command: "echo", args: ["it's", "tab\there", "'x'"], buffer: "", line: 1 },
      sql("select 1;", 1)
    ])
  })

  it("an unterminated quoted argument is an error naming its line", () => {
    const lexer = new ScriptLexer("select 1;\n\\echo 'open\n", () => undefined)
    expect(lexer.next()).toEqual(sql("select 1;", 1))
    expect(() => lexer.next()).toThrow(LexError)
  })

  it("seed: the buffer a meta-command left in place starts the next statement", () => {
    const lexer = new ScriptLexer("select $1 \\bind 1\n;\n", () => undefined)
    const bind = lexer.next()
    expect(bind).toMatchObject({ _tag: "Meta", command: "bind", buffer: "select $1" })
    lexer.seed("select $1")
    expect(lexer.next()).toEqual(sql("select $1\n;", 2))
  })
})
