/**
 * The password responses of PostgreSQL's two pre-SCRAM methods, as the PasswordMessage's string:
 *   - AuthenticationCleartextPassword: the password itself;
 *   - AuthenticationMD5Password: "md5" + md5hex(md5hex(password + user) + salt), where user is the
 *     startup packet's user name and salt the 4 bytes the server sent (protocol docs, "Message
 *     Formats", AuthenticationMD5Password).
 * Both refuse an empty password (libpq's "no password supplied") and a NUL character, which a
 * C-string PasswordMessage cannot carry.
 *
 * Not here: whether the method is allowed (`requireAuth.ts`) and framing (the codec's
 * PasswordMessage adds the terminating NUL).
 */
import { Result } from "effect"
import { nodeCrypto } from "../builtins.ts"
import { type AuthenticationError, authError } from "./AuthenticationError.ts"

const encoder = new TextEncoder()

const checkPassword = (password: string): AuthenticationError | undefined => {
  if (password.length === 0)
    return authError("NoPassword", "the server requested a password and none was supplied")
  if (password.includes("\0"))
    return authError("NoPassword", "the password contains a NUL character, which cannot be sent")
  return undefined
}

const md5hex = (...parts: ReadonlyArray<Uint8Array>): string => {
  const h = nodeCrypto().createHash("md5")
  for (const p of parts) h.update(p)
  return h.digest("hex")
}

/** The PasswordMessage string answering AuthenticationMD5Password. */
export const md5PasswordResponse = (
  user: string,
  password: string,
  salt: Uint8Array
): Result.Result<string, AuthenticationError> => {
  const bad = checkPassword(password)
  if (bad !== undefined) return Result.fail(bad)
  if (salt.length !== 4) {
    return Result.fail(authError("MalformedServerMessage", `MD5 salt must be 4 bytes, got ${salt.length}`))
  }
  const inner = md5hex(encoder.encode(password), encoder.encode(user))
  return Result.succeed("md5" + md5hex(encoder.encode(inner), salt))
}

/** The PasswordMessage string answering AuthenticationCleartextPassword. */
export const cleartextPasswordResponse = (password: string): Result.Result<string, AuthenticationError> => {
  const bad = checkPassword(password)
  return bad === undefined ? Result.succeed(password) : Result.fail(bad)
}
