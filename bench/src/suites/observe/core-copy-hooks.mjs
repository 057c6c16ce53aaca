/**
 * Module hooks of the `observe` suite: `packages/core/src/index.ts?cqrs-copy=<on|off>` loads a separate copy of
 * core (every core module it imports gets the same query). In the `off` copy every `<name>Channel.hasSubscribers`
 * guard is replaced by `false` before compiling: a build of core with its diagnostics compiled out, the baseline
 * of `cqrs-ts send no subscriber` (which runs the `on` copy, unchanged, with nobody listening).
 */
const COPY = /[?&]cqrs-copy=(on|off)\b/;
const CORE = '/packages/core/src/';

export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  const copy = context.parentURL === undefined ? null : COPY.exec(context.parentURL);
  if (
    copy !== null &&
    resolved.url.startsWith('file:') &&
    resolved.url.includes(CORE) &&
    !resolved.url.includes('?')
  )
    return { ...resolved, url: `${resolved.url}?cqrs-copy=${copy[1]}` };
  return resolved;
}

export async function load(url, context, next) {
  const loaded = await next(url, context);
  if (!url.includes(CORE) || !url.includes('cqrs-copy=off')) return loaded;
  const source = String(loaded.source).replace(/\b[A-Za-z]+Channel\.hasSubscribers\b/g, 'false');
  return { ...loaded, source };
}
