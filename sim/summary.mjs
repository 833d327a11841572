// sim/summary.mjs — summary requests (edgechat's summary of a conversation's older part): recognised by the instruction's first words, answered with the user's lines, shortened.

/** The first words of edgechat's summary instruction (its system prompt). */
export const SUMMARY_MARKER = 'You keep a running summary of a conversation';
/** Characters kept of each user line. */
const LINE_CHARS = 200;

function between(text, open, close) {
  const start = text.indexOf(open);
  if (start < 0) return null;
  const end = text.indexOf(close, start + open.length);
  return end < 0 ? null : text.slice(start + open.length, end);
}

/**
 * The answer to a summary request, or null when `texts` (the prompt's texts, system first) are
 * not one: the lines of the `<previous_summary>` as they are, then each `user: ` line of the
 * `<transcript>` without its prefix, cut to 200 characters, one per line. So the facts a user
 * gave are carried through every summary, as a real model would keep them.
 */
export function summaryAnswer(texts) {
  if (!String(texts[0] ?? '').startsWith(SUMMARY_MARKER)) return null;
  const input = String(texts.at(-1) ?? '');
  const previous = between(input, '<previous_summary>\n', '\n</previous_summary>');
  const transcript = between(input, '<transcript>\n', '\n</transcript>') ?? '';
  const lines = previous ? previous.split('\n').filter((l) => l.trim()) : [];
  for (const line of transcript.split('\n')) {
    if (line.startsWith('user: ')) lines.push([...line.slice(6)].slice(0, LINE_CHARS).join(''));
  }
  return lines.length ? lines.join('\n') : 'Nothing to summarize.';
}
