// sim/title.mjs — title requests (edgechat's one short call that names a conversation after its first answer): recognised by the instruction's first words, answered with the question's first six words in quotes and a full stop, as a model might (the worker takes the marks off).

/** The first words of edgechat's title instruction (its system prompt). */
export const TITLE_MARKER = 'Write a short title';

/** The answer to a title request, or null when `texts` (system first) are not one. */
export function titleAnswer(texts) {
  if (!String(texts[0] ?? '').startsWith(TITLE_MARKER)) return null;
  const input = String(texts.at(-1) ?? '');
  const line = input.split('\n').find((l) => l.startsWith('user: ')) ?? 'user: Untitled';
  const words = line.slice(6).replace(/[^\p{L}\p{N}\s'-]+/gu, ' ').split(/\s+/).filter(Boolean).slice(0, 6);
  return `"${words.join(' ') || 'Untitled'}".`;
}
