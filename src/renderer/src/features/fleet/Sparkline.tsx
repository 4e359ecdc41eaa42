import { memo } from 'react';
import { sparklinePath } from './sparklinePath';

const WIDTH = 48;
const HEIGHT = 14;

/** A tiny line chart of recent readings, scaled from 0 to `max`; purely decorative beside the figure it shows. */
export const Sparkline = memo(function Sparkline(props: { values: readonly number[]; max: number }): React.JSX.Element {
  return (
    <svg className="sparkline" width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} aria-hidden="true">
      <path d={sparklinePath(props.values, WIDTH, HEIGHT, props.max)} />
    </svg>
  );
});
