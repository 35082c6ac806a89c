/**
 * @pgline/cli: the `pgline` command (SQL scripts run like psql, with psql 18's pipeline
 * meta-commands) and `runScript`, the same from Effect code.
 *
 * @example
 * ```ts
 * import { runScript } from "@pgline/cli"
 *
 * const { exitCode, stdout } = yield* runScript(
 *   [{ script: "begin;\n\\startpipeline\ninsert into t values (1);\n\\endpipeline\ncommit;\n", fileName: "import.sql" }],
 *   { connection: "postgres://app@localhost/app", variables: { ON_ERROR_STOP: "1" } }
 * )
 * ```
 */
export { runScript, type ScriptAction, type ScriptOptions, type ScriptResult } from "./Script.ts"
