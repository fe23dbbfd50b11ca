/**
 * HTML built so that escaping is the default: html`<p>${text}</p>` escapes every value
 * unless it is itself built by `html` (or marked with `raw` for a constant the code owns,
 * such as an inline SVG icon). Arrays are joined; null, undefined and false render nothing.
 */

/** A piece of HTML that is safe to insert as it is. */
export class SafeHtml {
  constructor(private readonly value: string) {}

  toString(): string {
    return this.value;
  }
}

/** Escapes text for HTML content and attribute values. */
export function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** What may go into the template. */
export type HtmlValue = string | number | boolean | null | undefined | SafeHtml | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.toString();
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return esc(String(value));
}

/** The tagged template: values are escaped, SafeHtml values inserted as they are. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new SafeHtml(out);
}

/** Marks markup the code itself wrote (never text from a request or a file) as safe. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
