/** Whether a fiber's spans can be seen, so pgline makes none when nobody could read them. */
import { type Context, References, Tracer } from "effect"

/**
 * A tracing backend is installed and tracing is on. Without one, Effect's in-memory native tracer
 * keeps spans nobody reads: pgline then skips its own spans (and the scopes only they need).
 */
export const tracingOn = (fiber: { getRef: <A>(ref: Context.Reference<A>) => A }): boolean =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer && fiber.getRef(References.TracerEnabled)
