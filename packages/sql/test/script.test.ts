/**
 * The Migrator's check of a migration script for transaction control, read before it runs:
 * statements are split where the server splits them (not inside strings, bodies, BEGIN ATOMIC
 * bodies of CREATE FUNCTION / PROCEDURE, or a rule's parenthesised action list). Hermetic.
 */
import { describe, expect, it } from "vitest"
import { transactionControlIn } from "../src/internal/script.ts"

describe("transactionControlIn", () => {
  it("finds BEGIN, COMMIT and ROLLBACK statements, not the words inside bodies or rules", () => {
    expect(transactionControlIn("create table t (a int); commit;")).toBe("COMMIT")
    expect(
      transactionControlIn(
        "create function f() returns int language sql begin atomic select 1; end; select 1"
      )
    ).toBeUndefined()
    expect(
      transactionControlIn(
        "create rule r as on insert to t do also (insert into a values (1); insert into b values (2)); select 1"
      )
    ).toBeUndefined()
  })

  it("opens a body only for BEGIN ATOMIC adjacent in CREATE FUNCTION / PROCEDURE", () => {
    // Columns named begin and atomic (both unreserved) do not open one: the COMMIT is seen.
    expect(
      transactionControlIn(
        "create table ba (begin int, atomic int); create index ba_i on ba (begin, atomic); commit;"
      )
    ).toBe("COMMIT")
    expect(transactionControlIn("create view v as select t.begin atomic from t; rollback;")).toBe("ROLLBACK")
    // A qualified name's part is no keyword inside a body.
    expect(
      transactionControlIn(
        "create procedure p() language sql begin atomic select t.end from t; select t.case from t; end; commit;"
      )
    ).toBe("COMMIT")
  })
})
