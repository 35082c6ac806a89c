/**
 * @pgline/codec: PostgreSQL wire protocol 3.0/3.2 as bytes <-> messages, the type codecs and the
 * SQLSTATE table. Sans-I/O: no sockets, no Effect runtime, no Node APIs; everything is Uint8Array.
 */
// --- protocol (messages, encoders, parsers) ---

// --- types (codecs, registry) and SQLSTATE ---
