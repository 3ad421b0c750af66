/**
 * The chart of `bench:lsm`: each store's throughput against classic-level's
 * in the same run, per workload, as horizontal bars on a log scale.
 */

/** One workload's bars: each store's ratio of medians against classic-level. */
export interface RatioGroup {
  readonly workload: string;
  readonly ratios: readonly { readonly store: string; readonly ratio: number }[];
}

import { escapeXml } from './shared.js';

const PALETTE = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];

/**
 * SVG text: one group of bars per workload, one bar per store (colours in
 * the order of `stores`), from the 1× line (classic-level) to the store's
 * ratio, log2 scale clamped to [1/32, 32].
 */
export function ratioChart(
  title: string,
  stores: readonly string[],
  groups: readonly RatioGroup[],
): string {
  const bar = 12;
  const gap = 10;
  const left = 120;
  const plotW = 520;
  const top = 50;
  const legendW = 180;
  const groupH = stores.length * bar + gap;
  const plotH = groups.length * groupH;
  const width = left + plotW + legendW + 20;
  const height = top + plotH + 50;
  const span = 5; // 2^±5
  const xOf = (ratio: number): number => {
    const log = Math.max(-span, Math.min(span, Math.log2(ratio)));
    return left + ((log + span) / (2 * span)) * plotW;
  };
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="24" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (let power = -span; power <= span; power++) {
    const x = xOf(2 ** power).toFixed(1);
    const label = power >= 0 ? `${2 ** power}×` : `1/${2 ** -power}`;
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="${power === 0 ? '#333333' : '#eeeeee'}"/>`,
      `<text x="${x}" y="${top + plotH + 16}" text-anchor="middle">${label}</text>`,
    );
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${height - 10}" text-anchor="middle">throughput against classic-level in the same run (median, log scale; 1× = classic-level)</text>`,
  );
  groups.forEach((group, g) => {
    const y0 = top + g * groupH;
    out.push(
      `<text x="${left - 8}" y="${y0 + (stores.length * bar) / 2}" text-anchor="end" dominant-baseline="middle">${escapeXml(group.workload)}</text>`,
    );
    for (const { store, ratio } of group.ratios) {
      const i = stores.indexOf(store);
      if (i < 0 || !Number.isFinite(ratio) || ratio <= 0) continue;
      const a = xOf(1);
      const b = xOf(ratio);
      out.push(
        `<rect x="${Math.min(a, b).toFixed(1)}" y="${y0 + i * bar + 1}" width="${Math.max(1, Math.abs(b - a)).toFixed(1)}" height="${bar - 2}" fill="${PALETTE[i % PALETTE.length]}"><title>${escapeXml(`${group.workload}, ${store}: ${ratio.toFixed(2)}×`)}</title></rect>`,
      );
    }
  });
  stores.forEach((store, i) => {
    const x = left + plotW + 20;
    const y = top + 10 + i * 20;
    out.push(
      `<rect x="${x}" y="${y - 6}" width="14" height="12" fill="${PALETTE[i % PALETTE.length]}"/>`,
      `<text x="${x + 20}" y="${y}" dominant-baseline="middle">${escapeXml(store)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
