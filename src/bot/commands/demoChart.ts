/**
 * The demo report of /test: two weeks of sample revenue as a PNG chart, today's drop in
 * red, drawn as SVG and rendered with resvg (a prebuilt binary from npm; no Python, no
 * canvas build).
 */
import { esc } from '../../shared/html.js';

/** One day of sample revenue. */
export interface DayRevenue {
  date: string;
  revenue: number;
}

/** Fourteen days of plausible revenue ending today, with a drop on the last day. */
export function sampleRevenue(today: Date): DayRevenue[] {
  const days: DayRevenue[] = [];
  for (let i = 13; i >= 0; i -= 1) {
    const d = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() - i));
    const weekday = d.getUTCDay();
    const weekend = weekday === 0 || weekday === 6 ? -9000 : 0;
    const wave = Math.round(4000 * Math.sin((13 - i) * 0.9));
    const revenue = i === 0 ? 41_500 : 58_000 + weekend + wave + ((13 - i) % 3) * 1500;
    days.push({ date: d.toISOString().slice(0, 10), revenue });
  }
  return days;
}

/** The chart as SVG text. */
export function revenueChartSvg(days: DayRevenue[], title: string): string {
  const W = 900;
  const H = 500;
  const left = 80;
  const right = 30;
  const top = 70;
  const bottom = 70;
  const max = Math.ceil((Math.max(...days.map((d) => d.revenue)) * 1.1) / 20_000) * 20_000;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const slot = plotW / days.length;
  const barW = slot * 0.66;
  const avg7 = days.slice(-8, -1).reduce((s, d) => s + d.revenue, 0) / 7;
  const y = (v: number): number => top + plotH - (v / max) * plotH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${left}" y="38" font-size="24" font-weight="bold" fill="#1f2937">${esc(title)}</text>`,
  ];
  for (let g = 0; g <= 4; g += 1) {
    const v = (max / 4) * g;
    parts.push(`<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text x="${left - 10}" y="${(y(v) + 5).toFixed(1)}" font-size="14" text-anchor="end" fill="#6b7280">$${Math.round(v / 1000)}k</text>`);
  }
  days.forEach((d, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    const last = i === days.length - 1;
    parts.push(`<rect x="${x.toFixed(1)}" y="${y(d.revenue).toFixed(1)}" width="${barW.toFixed(1)}" height="${(top + plotH - y(d.revenue)).toFixed(1)}" rx="3" fill="${last ? '#dc2626' : '#3b82f6'}"/>`);
    if (i % 2 === 1 || last) {
      parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${H - bottom + 22}" font-size="13" text-anchor="middle" fill="${last ? '#dc2626' : '#6b7280'}">${d.date.slice(5)}</text>`);
    }
  });
  parts.push(`<line x1="${left}" x2="${W - right}" y1="${y(avg7).toFixed(1)}" y2="${y(avg7).toFixed(1)}" stroke="#f59e0b" stroke-width="2" stroke-dasharray="8 6"/>`);
  parts.push(`<text x="${W - right}" y="${(y(avg7) - 8).toFixed(1)}" font-size="14" text-anchor="end" fill="#b45309">7-day average $${(avg7 / 1000).toFixed(1)}k</text>`);
  const today = days[days.length - 1]!;
  const tx = left + (days.length - 1) * slot + slot / 2;
  parts.push(`<text x="${tx.toFixed(1)}" y="${(y(today.revenue) - 10).toFixed(1)}" font-size="15" font-weight="bold" text-anchor="middle" fill="#dc2626">$${(today.revenue / 1000).toFixed(1)}k</text>`);
  parts.push(`<text x="${left}" y="${H - 18}" font-size="13" fill="#9ca3af">Sample data - this is what a script's chart looks like in Telegram</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** The demo report: PNG bytes and a caption in legacy Markdown. */
export async function demoReport(now: Date): Promise<{ png: Buffer; title: string; message: string }> {
  // Loaded on first use: the renderer is a native module the bot otherwise never needs.
  const { Resvg } = await import('@resvg/resvg-js');
  const days = sampleRevenue(now);
  const today = days[days.length - 1]!;
  const avg7 = days.slice(-8, -1).reduce((s, d) => s + d.revenue, 0) / 7;
  const drop = Math.round((1 - today.revenue / avg7) * 100);
  const svg = revenueChartSvg(days, 'Daily revenue, last 14 days');
  const png = new Resvg(svg, { background: '#ffffff', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  return {
    png,
    title: `Test report: revenue down ${drop}%`,
    message: `Today: *$${(today.revenue / 1000).toFixed(1)}k* vs 7-day average $${(avg7 / 1000).toFixed(1)}k.\nThis is a sample: your own scripts in \`~/user/notifications/\` can send reports like this one.`,
  };
}
