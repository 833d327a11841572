// sim/text.mjs — deterministic text: hashing, PRNG, token generation, prompt text extraction and counting.

const VOCAB = (
  'the of and to in is that for it as with was on be by at this from or have an they which ' +
  'one you were all we when there can more about would so some what up out time if will ' +
  'other into has its two then could first water been people way like over these long ' +
  'little very after words called just where most know through back much before line right ' +
  'too means old any same tell boy follow came want show also around form three small set ' +
  'put end does another well large must big even such because turn here why ask went men ' +
  'read need land different home us move try kind hand picture again change off play spell ' +
  'air away animal house point page letter mother answer found study still learn should ' +
  'world high every near add food between own below country plant last school father keep ' +
  'tree never start city earth eye light thought head under story saw left few while along ' +
  'might close something seem next hard open example begin life always those both paper ' +
  'together got group often run important until children side feet car mile night walk ' +
  'white sea began grow took river four carry state once book hear stop without second later'
).split(' ');

export { VOCAB };

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
export function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(String(text), 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 PRNG: returns a function yielding floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random generator seeded from a string. */
export function rngFor(seedText) {
  return mulberry32(fnv1a(seedText));
}

/** `n` vocabulary words; every token but the first has a leading space. Pure and deterministic. */
export function generateTokens(seedText, n) {
  const rng = rngFor(seedText);
  const out = new Array(Math.max(0, n | 0));
  for (let i = 0; i < out.length; i++) {
    const word = VOCAB[Math.floor(rng() * VOCAB.length)];
    out[i] = i === 0 ? word : ' ' + word;
  }
  return out;
}

/** Split text into tokens before each space, keeping the spaces ("a b  c" -> ["a", " b", " ", " c"]). */
export function echoTokens(text) {
  return text ? text.split(/(?= )/) : [];
}

/** The seed string for a request: base model name and every prompt text, newline-joined. */
export function seedText(baseModel, texts) {
  return [baseModel, ...texts].join('\n');
}

/** Text of a message content: a string, or the concatenated `text` of an array of parts/blocks. */
export function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let s = '';
  for (const part of content) if (part && typeof part.text === 'string') s += part.text;
  return s;
}

/** Prompt token estimate: ceil(total characters / 4), at least 1. */
export function promptTokens(texts) {
  let chars = 0;
  for (const t of texts) chars += t.length;
  return Math.max(1, Math.ceil(chars / 4));
}

/** Text of the last message with role "user" ('' if none). */
export function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') return contentText(messages[i].content);
  }
  return '';
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A deterministic `prefix` + `len` alphanumeric characters derived from `seed`. */
export function stableId(prefix, seed, len = 24) {
  const rng = rngFor(seed);
  let s = prefix;
  for (let i = 0; i < len; i++) s += ALNUM[Math.floor(rng() * ALNUM.length)];
  return s;
}
