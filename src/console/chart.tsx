/**
 * Charts of the monitor's series (`queryMetrics`, the call behind `hox metrics`), drawn by uPlot: one chart per
 * panel, one line per labelled series, the unit on the axis. uPlot draws on a canvas, so each chart also has a
 * text summary (latest value of each line) for screen readers and for a quick read.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { ResponseOf } from '../client/route-call.js';
import { useLoad } from './live.js';
import { Loading, Problem } from './ui.js';

type Metrics = ResponseOf<'queryMetrics'>;
type Series = Metrics['series'][number];

const COLOURS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7c86'];

export function formatValue(value: number | null, unit: Series['unit']): string {
  if (value === null) return '—';
  switch (unit) {
    case 'bytes':
    case 'bytes/s': {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let v = value;
      let i = 0;
      while (Math.abs(v) >= 1024 && i < units.length - 1) {
        v /= 1024;
        i += 1;
      }
      return `${v.toFixed(v >= 100 || i === 0 ? 0 : 1)} ${units[i]}${unit === 'bytes/s' ? '/s' : ''}`;
    }
    case 'ratio':
      return `${(value * 100).toFixed(1)} %`;
    case 'seconds':
      return value < 1 ? `${(value * 1000).toFixed(0)} ms` : `${value.toFixed(2)} s`;
    case 'rate':
      return `${value.toFixed(2)}/s`;
    case 'count':
      return value.toFixed(0);
  }
}

/** The label that tells lines apart (member, replica, standby…), or the panel's name. */
function lineLabel(series: Series): string {
  const labels = Object.entries(series.labels);
  return labels.length === 0 ? series.name : labels.map(([k, v]) => `${k}=${v}`).join(' ');
}

function Chart(props: { title: string; lines: Series[]; start: number; stepS: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (element === null) return;
    const length = Math.max(...props.lines.map((l) => l.values.length));
    const times = Array.from({ length }, (_, i) => props.start + i * props.stepS);
    const unit = props.lines[0]?.unit ?? 'count';
    const plot = new uPlot(
      {
        width: Math.max(280, element.clientWidth),
        height: 180,
        legend: { show: props.lines.length > 1 },
        series: [
          {},
          ...props.lines.map((l, i) => ({
            label: lineLabel(l),
            stroke: COLOURS[i % COLOURS.length]!,
            width: 1.5,
            value: (_u: uPlot, v: number | null) => formatValue(v, unit),
          })),
        ],
        axes: [{}, { size: 70, values: (_u: uPlot, ticks: number[]) => ticks.map((t) => formatValue(t, unit)) }],
      },
      [times, ...props.lines.map((l) => l.values)] as uPlot.AlignedData,
      element,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, element.clientWidth), height: 180 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [props.lines, props.start, props.stepS]);
  const latest = props.lines.map((l) => {
    const last = [...l.values].reverse().find((v) => v !== null) ?? null;
    return `${props.lines.length > 1 ? `${lineLabel(l)}: ` : ''}${formatValue(last, l.unit)}`;
  });
  return (
    <figure class="chart">
      <figcaption>
        <strong>{props.title}</strong> <span class="muted">now {latest.join(', ')}</span>
      </figcaption>
      <div ref={box} aria-hidden="true" />
    </figure>
  );
}

/** The monitor's key series of a compute node or an instance tree, over the last `minutes`. */
export function MetricCharts(props: { target: string; minutes: number }) {
  const metrics = useLoad(
    (api, options) => api.call('queryMetrics', { target: props.target, minutes: props.minutes }, options),
    [props.target, props.minutes],
  );
  if (metrics.error !== null && metrics.data === undefined) return <Problem text={metrics.error} />;
  if (metrics.data === undefined) return <Loading what="metrics" />;
  const panels = new Map<string, Series[]>();
  for (const series of metrics.data.series) panels.set(series.name, [...(panels.get(series.name) ?? []), series]);
  if (panels.size === 0) return <p class="muted">The monitor has no series for this yet.</p>;
  const start = Date.parse(metrics.data.start) / 1000;
  return (
    <div class="charts">
      {[...panels].map(([name, lines]) => (
        <Chart key={name} title={name} lines={lines} start={start} stepS={metrics.data!.step_s} />
      ))}
    </div>
  );
}
