/**
 * Which codecs are array, range or multirange codecs (made by arrayCodec, rangeCodec,
 * multirangeCodec): the registry sends a value JavaScript cannot type (an array of strings) to
 * such a parameter as text for the server to read. Internal to the codec package.
 */
import type { Codec } from "../types/Codec.ts"

const containers = new WeakSet<Codec<any>>()

/** Marks a codec as an array, range or multirange codec; returns it. */
export const markContainer = <C extends Codec<any>>(codec: C): C => {
  containers.add(codec)
  return codec
}

/** Whether a codec is an array, range or multirange codec. */
export const isContainer = (codec: Codec<any>): boolean => containers.has(codec)
