import { useEffect, useRef, useState } from 'react';
import type { GoldenImageVersion } from '../../../../shared/protocol/image';
import { useActions } from '../../state/actionsContext';
import { useHostsStore } from '../../state/hostsStore';
import { useImagesStore, type KnownBuild } from '../../state/imagesStore';
import { useNow } from '../fleet/useNow';
import { byImage, canRollback, formatBytes, formatElapsed, SHOWN_STEPS, stepLabel, stepState } from './imagesModel';

/** How many of a build's last log lines the view draws (the store keeps more, bounded). */
export const LOG_LINES_SHOWN = 300;

/** Recipes the daemon ships; any other name a host's `images/` holds may be typed. */
const KNOWN_RECIPES = ['test', 'cli', 'browser'];

/** Every connected host's golden images and builds: build a recipe live, promote, roll back, collect. */
export function ImagesView(): React.JSX.Element {
  const { images } = useActions();
  const hosts = useHostsStore((s) => s.hosts);
  const statuses = useHostsStore((s) => s.statuses);
  const connected = hosts.filter((h) => statuses[h.id]?.state === 'connected');
  const ids = connected.map((h) => h.id).join(',');
  useEffect(() => {
    for (const id of ids.split(',')) if (id !== '') void images.refresh(id);
  }, [images, ids]);
  return (
    <section className="images-view">
      <h2>Images</h2>
      {connected.length === 0 ? <p className="empty">Connect a host to see and build its golden images.</p> : null}
      {connected.map((h) => (
        <HostImages key={h.id} hostId={h.id} hostName={h.name} />
      ))}
    </section>
  );
}

function HostImages({ hostId, hostName }: { hostId: string; hostName: string }): React.JSX.Element {
  const { images } = useActions();
  const versions = useImagesStore((s) => s.versions[hostId]);
  const error = useImagesStore((s) => s.errors[hostId] ?? null);
  const busy = useImagesStore((s) => s.busy[hostId] === true);
  const allBuilds = useImagesStore((s) => s.builds);
  const builds = Object.values(allBuilds)
    .filter((b) => b.hostId === hostId)
    .sort((a, b) => b.build.startedAt.localeCompare(a.build.startedAt));
  const [recipe, setRecipe] = useState('test');
  const [skipBootTest, setSkipBootTest] = useState(false);
  const groups = byImage(versions ?? []);
  const running = new Set(builds.filter((b) => b.build.status === 'running').map((b) => b.build.recipe));

  return (
    <div className="host-images" data-testid={`images-host-${hostId}`}>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void images.build(hostId, recipe.trim(), { skipBootTest });
        }}
      >
        <h3>{hostName}</h3>
        <input
          value={recipe}
          onChange={(e) => setRecipe(e.target.value)}
          list={`recipes-${hostId}`}
          aria-label="Recipe"
          placeholder="recipe"
        />
        <datalist id={`recipes-${hostId}`}>
          {[...new Set([...KNOWN_RECIPES, ...groups.map(([name]) => name)])].map((name) => (
            <option key={name} value={name} />
          ))}
        </datalist>
        <label>
          <input type="checkbox" checked={skipBootTest} onChange={(e) => setSkipBootTest(e.target.checked)} /> skip boot
          test
        </label>
        <button type="submit" className="primary" disabled={recipe.trim() === '' || running.has(recipe.trim())}>
          Build
        </button>
        <span className="spacer" />
        <button type="button" onClick={() => void images.refresh(hostId)}>
          Refresh
        </button>
      </form>
      {error ? (
        <p className="error" role="alert">
          {error.message}
          {error.hint ? <span className="muted"> {error.hint}</span> : null}
        </p>
      ) : null}
      {builds.map((b) => (
        <BuildCard key={b.build.buildId} known={b} />
      ))}
      {versions === undefined ? null : groups.length === 0 ? (
        <p className="empty">No golden images on {hostName} yet: build one.</p>
      ) : (
        groups.map(([name, list]) => (
          <ImageVersions key={name} hostId={hostId} name={name} versions={list} busy={busy} />
        ))
      )}
    </div>
  );
}

function BuildCard({ known }: { known: KnownBuild }): React.JSX.Element {
  const { images } = useActions();
  const { build, log, hostId } = known;
  const now = useNow(1000);
  const pre = useRef<HTMLPreElement>(null);
  const [follow, setFollow] = useState(true);
  const lines = log.tail(LOG_LINES_SHOWN);
  useEffect(() => {
    if (follow && pre.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [follow, known.version]);
  return (
    <div className={`build-card build-${build.status}`} data-testid={`build-${build.buildId}`}>
      <div className="build-head">
        <strong>{build.recipe}</strong>
        <span className={`pill build-status-${build.status}`} data-testid="build-status">
          {build.status}
        </span>
        <span className="muted">
          {build.buildId} · {formatElapsed(build.startedAt, build.endedAt, now)}
          {build.percent === null ? '' : ` · ${build.percent}%`}
          {build.version === null ? '' : ` · ${build.reused ? 'reused' : 'published'} ${build.version}`}
        </span>
        <span className="spacer" />
        {build.status === 'running' ? (
          <button type="button" className="danger" onClick={() => void images.cancel(hostId, build.buildId)}>
            Cancel build
          </button>
        ) : null}
      </div>
      <ol className="build-steps" aria-label="Build steps">
        {SHOWN_STEPS.map((step) => (
          <li key={step} className={`build-step step-${stepState(build, step)}`} data-step={step}>
            {stepLabel(step)}
          </li>
        ))}
      </ol>
      {build.error ? (
        <p className="error">
          {build.error.message.split('\n')[0]}
          {build.error.hint ? <span className="muted"> {build.error.hint}</span> : null}
        </p>
      ) : null}
      <details open={build.status === 'running'}>
        <summary>
          Log ({log.length + log.droppedLines} lines{log.droppedLines > 0 ? `, last ${lines.length} shown` : ''})
          <label className="follow">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> follow
          </label>
        </summary>
        <pre className="build-log" ref={pre} data-testid="build-log">
          {lines.join('\n')}
        </pre>
      </details>
    </div>
  );
}

function ImageVersions(props: {
  hostId: string;
  name: string;
  versions: GoldenImageVersion[];
  busy: boolean;
}): React.JSX.Element {
  const { images } = useActions();
  const { hostId, name, versions, busy } = props;
  return (
    <div className="image-versions" data-testid={`image-${name}`}>
      <div className="toolbar">
        <h4>{name}</h4>
        <span className="muted">
          {versions.length} {versions.length === 1 ? 'version' : 'versions'}
        </span>
        <span className="spacer" />
        <button
          type="button"
          disabled={busy}
          onClick={() => void images.gc(hostId, name)}
          title="Removes versions older than the two before the current one, unless a VM is pinned to them; shows which first"
        >
          Collect old versions…
        </button>
        <button
          type="button"
          disabled={busy || !canRollback(versions)}
          onClick={() => void images.rollback(hostId, name)}
          title="Make the version before the current one current again"
        >
          Roll back
        </button>
      </div>
      <table className="images-table">
        <thead>
          <tr>
            <th>Version</th>
            <th>Built</th>
            <th>Size</th>
            <th>Recipe hash</th>
            <th>Boot test</th>
            <th>Pinned by</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version} data-testid={`version-${v.version}`} className={v.current ? 'current' : undefined}>
              <td className="mono">
                {v.version}
                {v.current ? (
                  <span className="pill image-current" data-testid="current">
                    current
                  </span>
                ) : null}
                <details>
                  <summary>manifest</summary>
                  <dl className="manifest">
                    <dt>rootfs sha256</dt>
                    <dd className="mono">{v.rootfsSha256}</dd>
                    <dt>kernel</dt>
                    <dd className="mono">{v.kernelRelease}</dd>
                    <dt>npm globals</dt>
                    <dd className="mono">{v.npmGlobals.map((p) => `${p.name}@${p.version}`).join(', ') || 'none'}</dd>
                    <dt>packages ({v.packages.length})</dt>
                    <dd className="mono">{v.packages.map((p) => `${p.name} ${p.version}`).join(', ')}</dd>
                  </dl>
                </details>
              </td>
              <td title={v.builtAt}>{new Date(v.builtAt).toLocaleString()}</td>
              <td title={`${v.rootfsBytes} bytes (rootfs), ${v.diskBytes} on disk`}>
                {formatBytes(v.rootfsBytes)} <span className="muted">({formatBytes(v.diskBytes)} on disk)</span>
              </td>
              <td className="mono" title={v.recipeHash}>
                {v.recipeHash.slice(0, 12)}
              </td>
              <td data-testid="boot-test">
                {v.bootTest === null ? (
                  <span className="muted">not run</span>
                ) : (
                  <>
                    <span className="pill audit-ok">passed</span> {Math.round(v.bootTest.seconds)} s
                    <span className="muted"> ({v.bootTest.markers.join(', ')})</span>
                  </>
                )}
              </td>
              <td data-testid="pinned-by">{v.pinnedBy.length === 0 ? '' : v.pinnedBy.join(', ')}</td>
              <td>
                {v.current ? null : (
                  <button type="button" disabled={busy} onClick={() => void images.promote(hostId, name, v.version)}>
                    Promote
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
