/**
 * The queue-time SQL lexer a pipeline uses to refuse what cannot be pipelined (several statements
 * in one text, COPY, FETCH/MOVE). Hermetic. The rules are PostgreSQL's lexical ones (SQL syntax,
 * "Lexical Structure"), with standard_conforming_strings on (the default since 9.1): a semicolon
 * ends a statement only outside '…' and E'…' strings, "…" identifiers, $tag$…$tag$ dollar quotes,
 * -- comments and (nesting) block comments; $1 is a parameter, not a dollar quote. The same texts
 * run against the server in Pipeline.integration.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  droppedStatements,
  settingsSet,
  copyDirection,
  endsTransactionBlock,
  firstKeyword,
  isCopyStdio,
  statementsOf
} from "../src/internal/sqlText.ts"

describe("statementsOf", () => {
  it("splits at top-level semicolons", () => {
    expect(statementsOf("select 1; select 2")).toEqual(["select 1", " select 2"])
    expect(statementsOf("insert into t values (1);delete from t;select 3")).toHaveLength(3)
  })

  it("drops empty statements: trailing semicolons, whitespace and comments only", () => {
    expect(statementsOf("select 1;")).toEqual(["select 1"])
    expect(statementsOf("select 1;  \n ;")).toEqual(["select 1"])
    expect(statementsOf(";;select 1;;")).toEqual(["select 1"])
    expect(statementsOf("")).toEqual([])
    expect(statementsOf("  \n\t ")).toEqual([])
    expect(statementsOf("-- nothing here")).toEqual([])
    expect(statementsOf("/* nothing */ ; -- still nothing\n;")).toEqual([])
  })

  it("keeps a semicolon inside a standard string (quotes doubled)", () => {
    expect(statementsOf("select 'a;b'")).toHaveLength(1)
    expect(statementsOf("select 'it''s; fine'")).toHaveLength(1)
    expect(statementsOf("select ''';'''")).toHaveLength(1)
    expect(statementsOf("select 'a;b'; select 'c;d'")).toEqual(["select 'a;b'", " select 'c;d'"])
  })

  it("treats a backslash in a standard string as an ordinary character", () => {
    // standard_conforming_strings: '\' is a complete one-character string.
    expect(statementsOf("select '\\'; select 2")).toHaveLength(2)
    expect(statementsOf("select 'C:\\dir\\'; select 2")).toHaveLength(2)
  })

  it("honours backslash escapes in E'…' strings (either case)", () => {
    expect(statementsOf("select E'back\\'slash;'")).toHaveLength(1)
    expect(statementsOf("select e'\\\\'; select 2")).toHaveLength(2)
    expect(statementsOf("select E'it''s;'")).toHaveLength(1)
  })

  it("keeps a semicolon inside a quoted identifier (quotes doubled)", () => {
    expect(statementsOf('select 1 as "semi;colon"')).toHaveLength(1)
    expect(statementsOf('select 1 as "a"";b"')).toHaveLength(1)
    expect(statementsOf('select 1 as "x"; select 2 as "y"')).toHaveLength(2)
  })

  it("keeps a semicolon inside dollar quotes, tagged or not", () => {
    expect(statementsOf("select $$a;b$$")).toHaveLength(1)
    expect(statementsOf("select $tag$ $$; $tag$")).toHaveLength(1)
    // Another tag, or a tag in another case, does not close the quote.
    expect(statementsOf("select $a$ ; $b$ ; $A$ ; $a$")).toHaveLength(1)
    expect(
      statementsOf("create function f() returns int language sql as $body$ select 1; select 2 $body$")
    ).toHaveLength(1)
    expect(statementsOf("select $$a$$; select $$b$$")).toHaveLength(2)
  })

  it("reads dollar-quote tags with non-ASCII letters and of any length, as the server does", () => {
    const body = "$cuerpo_ñ$ begin return 1; end $cuerpo_ñ$"
    expect(statementsOf(`create function f() returns int language plpgsql as ${body}`)).toHaveLength(1)
    expect(statementsOf("select $函数$ a; b $函数$; select 2")).toHaveLength(2)
    const long = `$${"t".repeat(100)}$`
    expect(statementsOf(`select ${long} a; b ${long}; select 2`)).toHaveLength(2)
    // A non-ASCII letter before $ makes it part of an identifier, not a quote's start.
    expect(statementsOf("select 1 as é$a$; select 2")).toHaveLength(2)
  })

  it("keeps the semicolons of a BEGIN ATOMIC body (and CASE … END inside it) in its statement", () => {
    const fn =
      "create function f(x int) returns int language sql begin atomic select 1; select case when x > 0 then 1 else 2 end; end"
    expect(statementsOf(fn)).toEqual([fn])
    expect(statementsOf(`${fn}; select 2`)).toHaveLength(2)
    expect(
      statementsOf("create or replace procedure p() language sql begin atomic insert into t values (1); end")
    ).toHaveLength(1)
    // Only CREATE FUNCTION / PROCEDURE opens such a body, with BEGIN and ATOMIC adjacent: a
    // transaction's BEGIN, a CASE elsewhere, columns named begin and atomic do not.
    expect(statementsOf("begin; select case when true then 1 end; commit")).toHaveLength(3)
    expect(statementsOf("create index i on t (begin, atomic); select 1")).toHaveLength(2)
    expect(statementsOf("create view v as select t.begin atomic from t; select 1")).toHaveLength(2)
    expect(
      statementsOf("create function f(begin int, atomic int) returns int language sql return 1; select 1")
    ).toHaveLength(2)
    // A qualified name's part is no keyword: t.end does not close the body, t.case opens nothing.
    const qualified =
      "create function f() returns int language sql begin atomic select t.end from t; select t.case from t; end"
    expect(statementsOf(qualified)).toEqual([qualified])
    expect(statementsOf(`${qualified}; select 1`)).toHaveLength(2)
  })

  it("keeps semicolons inside parentheses in their statement (a rule's action list), as the server does", () => {
    const rule =
      "create rule r as on insert to t do also (insert into a values (1); insert into b values (2))"
    expect(statementsOf(rule)).toEqual([rule])
    expect(statementsOf(`${rule}; select 1`)).toHaveLength(2)
  })

  it("does not take a $n parameter or a $ inside an identifier for a dollar quote", () => {
    expect(statementsOf("select $1; select $2")).toHaveLength(2)
    expect(statementsOf("select $1::text, $2::int; select 2")).toHaveLength(2)
    // Identifiers may contain $: x$y$ is one identifier, not the start of a quote.
    expect(statementsOf("select 1 as x$y$; select 2")).toHaveLength(2)
  })

  it("ignores semicolons in line comments and nested block comments", () => {
    expect(statementsOf("select 1 -- ; not a separator")).toHaveLength(1)
    expect(statementsOf("select 1 -- ;\n, 2")).toHaveLength(1)
    expect(statementsOf("select /* ; */ 1")).toHaveLength(1)
    expect(statementsOf("select /* outer /* inner; */ still; */ 1")).toHaveLength(1)
    expect(statementsOf("select 1 /* a */; select 2 /* b */")).toHaveLength(2)
  })

  it("does not take quotes inside comments, or comment markers inside strings, for what they are not", () => {
    expect(statementsOf("-- it's\nselect 1; select 2")).toHaveLength(2)
    expect(statementsOf('/* " */ select 1; select 2')).toHaveLength(2)
    expect(statementsOf("select '--'; select 2")).toHaveLength(2)
    expect(statementsOf("select '/*'; select 2")).toHaveLength(2)
    expect(statementsOf("select $$--$$; select 2")).toHaveLength(2)
  })

  it("an unterminated string, quote or comment swallows the rest of the text", () => {
    // The server will refuse it; the lexer must neither split nor loop.
    expect(statementsOf("select 'open; select 2")).toHaveLength(1)
    expect(statementsOf("select $$open; select 2")).toHaveLength(1)
    expect(statementsOf("select /* open; select 2")).toHaveLength(1)
    expect(statementsOf('select "open; select 2')).toHaveLength(1)
  })
})

describe("firstKeyword", () => {
  it("upper-cases the leading keyword", () => {
    expect(firstKeyword("select 1")).toBe("SELECT")
    expect(firstKeyword("Copy t from stdin")).toBe("COPY")
    expect(firstKeyword("COPY(select 1) to stdout")).toBe("COPY")
    expect(firstKeyword("fetch next from c")).toBe("FETCH")
    expect(firstKeyword("MOVE 2 in c")).toBe("MOVE")
  })

  it("skips leading whitespace and comments", () => {
    expect(firstKeyword("  \n\t copy t to stdout")).toBe("COPY")
    expect(firstKeyword("-- load\ncopy t from stdin")).toBe("COPY")
    expect(firstKeyword("/* a */ /* b */ -- c\n  copy t from stdin")).toBe("COPY")
    expect(firstKeyword("/*x*/fetch all in c")).toBe("FETCH")
  })

  it("skips the empty statements of leading semicolons (the server drops them)", () => {
    expect(firstKeyword(";begin")).toBe("BEGIN")
    expect(firstKeyword(" ; ;\n-- x\n; copy t from stdin")).toBe("COPY")
    expect(firstKeyword(";/* a */;fetch all in c")).toBe("FETCH")
    expect(firstKeyword(";;;")).toBe("")
  })

  it("reads a whole word: an identifier that starts with a keyword is not that keyword", () => {
    expect(firstKeyword("copying")).toBe("COPYING")
    expect(firstKeyword("fetcher")).toBe("FETCHER")
    expect(firstKeyword("copyé t")).toBe("COPYÉ")
    expect(firstKeyword("begin_x")).toBe("BEGIN_X")
  })

  it("is empty when no keyword starts the statement", () => {
    expect(firstKeyword("")).toBe("")
    expect(firstKeyword("   ")).toBe("")
    expect(firstKeyword("-- only a comment")).toBe("")
    expect(firstKeyword("(select 1)")).toBe("")
  })
})

describe("copyDirection", () => {
  it("reads only the COPY's own target, outside parentheses; STDIN and STDOUT either way", () => {
    expect(copyDirection("copy t to stdin")).toBe("out")
    expect(copyDirection("copy t from stdout")).toBe("in")
    expect(copyDirection("copy t (stdin) from stdin")).toBe("in")
    expect(copyDirection("copy (select n from stdout) to '/tmp/x'")).toBeUndefined()
    expect(copyDirection("copy (select n from stdin) to program 'cat'")).toBeUndefined()
    expect(copyDirection("copy (select n from stdin) to stdout with (format csv)")).toBe("out")
  })

  it("reads FROM STDIN and TO STDOUT, in any case, around comments and options", () => {
    expect(copyDirection("copy t from stdin")).toBe("in")
    expect(copyDirection("COPY t (a, b) FROM /* x */ STDIN WITH (format csv)")).toBe("in")
    expect(copyDirection("copy (select 1) to stdout with csv header")).toBe("out")
    expect(copyDirection(" ;copy t to stdout")).toBe("out")
    expect(isCopyStdio("copy t to stdout")).toBe(true)
  })

  it("is undefined for a server-side file or program, or a statement that is not COPY", () => {
    expect(copyDirection("copy t from '/tmp/t.csv'")).toBeUndefined()
    expect(copyDirection("copy t to program 'gzip > /tmp/t.gz'")).toBeUndefined()
    expect(copyDirection("select 'copy t from stdin'")).toBeUndefined()
    expect(isCopyStdio("copy t from '/tmp/t.csv'")).toBe(false)
  })

  it("is not fooled by a column or alias named stdin or stdout", () => {
    expect(copyDirection("copy (select 1 as stdout) to '/tmp/x'")).toBeUndefined()
    expect(copyDirection("copy (select stdin from t) to '/tmp/x'")).toBeUndefined()
    expect(copyDirection("copy (select 1 as stdin) to stdout")).toBe("out")
    expect(copyDirection('copy t ("stdout") from stdin')).toBe("in")
    expect(copyDirection("copy (select 1 as fromé) to '/tmp/x'")).toBeUndefined()
    expect(copyDirection("copy (select 'x' as stdouté) to stdout")).toBe("out")
  })
})

describe("settingsSet", () => {
  const encodings = (text: string) =>
    settingsSet(text).map(([name, value]) => (name === "client_encoding" ? value : `${name}=${value}`))

  it("reads SET client_encoding, SET NAMES and a SELECT's set_config, in each statement", () => {
    expect(encodings("set client_encoding = 'LATIN1'")).toEqual(["LATIN1"])
    expect(encodings('SET LOCAL client_encoding TO latin1; set names "SQL_ASCII"')).toEqual([
      "LATIN1",
      "SQL_ASCII"
    ])
    expect(encodings("select set_config('client_encoding', 'WIN1252', false)")).toEqual(["WIN1252"])
  })

  it("reads quoted names, comments between words, casts, E-strings and set_config outside a SELECT", () => {
    expect(encodings(`set "client_encoding" to 'LATIN1'`)).toEqual(["LATIN1"])
    expect(encodings("set/**/client_encoding/* x */to -- y\n latin1")).toEqual(["LATIN1"])
    expect(encodings("set client_encoding to e'utf\\8'")).toEqual(["utf8"])
    expect(encodings("set client_encoding to $$utf8$$")).toEqual(["utf8"])
    expect(
      encodings("with x as (select set_config('client_encoding'::text, 'LATIN1', false)) select 1")
    ).toEqual(["LATIN1"])
    expect(encodings("values (set_config('client_encoding', $1, false))")).toEqual(["(an expression)"])
  })

  it("ignores the words elsewhere: strings, bodies, other settings", () => {
    expect(encodings("select 'set client_encoding = latin1'")).toEqual([])
    expect(
      encodings(
        "create function f() returns void language sql as $$ select set_config('client_encoding', 'LATIN1', false) $$"
      )
    ).toEqual([])
    expect(encodings("set names_list = 'x'")).toEqual([])
    expect(encodings("select names from t")).toEqual([])
  })

  it("reads extra_float_digits: numbers, signs, strings, DEFAULT and set_config", () => {
    expect(settingsSet("set extra_float_digits = 0")).toEqual([["extra_float_digits", "0"]])
    expect(settingsSet("SET LOCAL Extra_Float_Digits TO -15; set extra_float_digits to 10")).toEqual([
      ["extra_float_digits", "-15"],
      ["extra_float_digits", "10"]
    ])
    expect(settingsSet(`set "extra_float_digits" = '0.4'`)).toEqual([["extra_float_digits", "0.4"]])
    expect(settingsSet("set extra_float_digits to default")).toEqual([["extra_float_digits", "DEFAULT"]])
    expect(settingsSet("select set_config('extra_float_digits', '0', true)")).toEqual([
      ["extra_float_digits", "0"]
    ])
    expect(settingsSet("select 'set extra_float_digits = 0', extra_float_digits from t")).toEqual([])
  })

  it("reads standard_conforming_strings: words, strings and set_config", () => {
    expect(settingsSet("set standard_conforming_strings = off")).toEqual([
      ["standard_conforming_strings", "OFF"]
    ])
    expect(settingsSet("set local standard_conforming_strings to 'no'")).toEqual([
      ["standard_conforming_strings", "no"]
    ])
    expect(settingsSet("select set_config('standard_conforming_strings', 'off', false)")).toEqual([
      ["standard_conforming_strings", "off"]
    ])
  })
})

describe("endsTransactionBlock", () => {
  it("COMMIT, END, ROLLBACK, ABORT and PREPARE TRANSACTION in any spelling end a block", () => {
    for (const text of [
      "commit",
      "COMMIT WORK",
      "commit and chain",
      "end transaction",
      "abort",
      "rollback",
      "rollback transaction and no chain",
      "/* first */ rollback",
      "prepare /* x */ transaction 'gid'"
    ])
      expect([text, endsTransactionBlock(text)]).toEqual([text, true])
  })

  it("ROLLBACK TO, the PREPARED forms and other statements do not", () => {
    for (const text of [
      "rollback to savepoint a",
      "ROLLBACK WORK TO SAVEPOINT a",
      "rollback transaction to a",
      "rollback -- back\n to savepoint a",
      "commit prepared 'gid'",
      "rollback /* x */ prepared 'gid'",
      "prepare q as select 1",
      "PREPARE transaction AS select 42",
      "prepare transaction (int) as select $1",
      "savepoint a",
      "select 'commit'",
      "begin",
      "endless"
    ])
      expect([text, endsTransactionBlock(text)]).toEqual([text, false])
  })
})

describe("droppedStatements", () => {
  it("reads what DEALLOCATE and DISCARD ALL drop, as the server names it", () => {
    expect(droppedStatements("deallocate Foo")).toEqual({ name: "foo" })
    expect(droppedStatements("  /* c */ DEALLOCATE PREPARE bar_1;")).toEqual({ name: "bar_1" })
    expect(droppedStatements('deallocate "Mixed ""Q"""')).toEqual({ name: 'Mixed "Q"' })
    expect(droppedStatements("deallocate prepare")).toEqual({ name: "prepare" })
    expect(droppedStatements('deallocate "ALL"')).toEqual({ name: "ALL" })
    expect(droppedStatements("deallocate a -- drop a only")).toEqual({ name: "a" })
    expect(droppedStatements("deallocate /* x */ a;;")).toEqual({ name: "a" })
    expect(droppedStatements("deallocate all")).toBe("all")
    expect(droppedStatements("DEALLOCATE PREPARE ALL")).toBe("all")
    expect(droppedStatements("discard /* c */ all")).toBe("all")
    expect(droppedStatements("discard -- c\n all")).toBe("all")
    // A name it cannot decode: every statement may be gone.
    expect(droppedStatements('deallocate U&"\\0061"')).toBe("all")
    expect(droppedStatements("discard plans")).toBeUndefined()
    expect(droppedStatements("select 1")).toBeUndefined()
    expect(droppedStatements("select E'x'")).toBeUndefined()
  })

  it("cuts a name over 63 bytes as the server does, on a character boundary", () => {
    const long = "n".repeat(70)
    expect(droppedStatements(`deallocate ${long}`)).toEqual({ name: "n".repeat(63) })
    expect(droppedStatements(`deallocate "${"N".repeat(64)}"`)).toEqual({ name: "N".repeat(63) })
    // 62 ASCII bytes then a 2-byte character: it does not fit, so 62 bytes are kept.
    expect(droppedStatements(`deallocate ${"a".repeat(62)}é${"b".repeat(5)}`)).toEqual({
      name: "a".repeat(62)
    })
    // A 4-byte character (two UTF-16 units) at bytes 60-63 fits whole.
    expect(droppedStatements(`deallocate "${"a".repeat(59)}😀x"`)).toEqual({ name: `${"a".repeat(59)}😀` })
    expect(droppedStatements(`deallocate ${"a".repeat(63)}`)).toEqual({ name: "a".repeat(63) })
  })
})
