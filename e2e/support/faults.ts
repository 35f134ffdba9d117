import { API_VERSION, kinds } from '../../lib/api/index.js';
import type { KubeClient, KubeObject } from '../../lib/kube/client.js';
import { table } from '../../cli/table.js';

/**
 * Bookkeeping for the reliability suite: the outcome of each injected fault, the summary table the
 * suite prints at the end, and the scan of logs, Events and Flotilla status for secret values.
 */

/** What happened after one fault or bad input. */
export interface FaultOutcome {
  /** The fault or input, e.g. "kill -9 agent during apply". */
  fault: string;
  /** converged: back to the commit in git; refused: rejected cleanly; clean: a scan found nothing; failed: none of these. */
  result: 'converged' | 'refused' | 'clean' | 'failed';
  /** Objects that were applied before the fault and missing after (must be 0). */
  objectsLost: number;
  /** Free text: what was observed (e.g. whether the kill landed mid-apply). */
  note?: string;
}

/** Collects outcomes in order and renders the summary table. */
export class FaultLog {
  readonly outcomes: FaultOutcome[] = [];

  /** Records an outcome (the latest one for a fault replaces an earlier one). */
  record(outcome: FaultOutcome): void {
    const i = this.outcomes.findIndex((o) => o.fault === outcome.fault);
    if (i >= 0) this.outcomes[i] = outcome;
    else this.outcomes.push(outcome);
  }

  /** The summary table: FAULT, RESULT, OBJECTS LOST, NOTE. */
  summary(): string {
    return table(
      ['FAULT', 'RESULT', 'OBJECTS LOST', 'NOTE'],
      this.outcomes.map((o) => [o.fault, o.result, String(o.objectsLost), o.note ?? '']),
    );
  }
}

/**
 * The run's one log of faults and bad inputs: every reliability suite records into it, and the e2e
 * root hook (e2e/fixture.ts) prints it as one summary table after the last test.
 */
export const faultLog = new FaultLog();

/** One place a secret value was found. */
export interface SecretHit {
  where: string;
  secretIndex: number;
}

/**
 * Finds every secret value (ignoring values shorter than 6 characters, which would match by chance)
 * in each named text. Hits name the place and the index of the secret, never the value itself.
 */
export function findSecrets(texts: readonly { where: string; text: string }[], secrets: readonly string[]): SecretHit[] {
  const hits: SecretHit[] = [];
  secrets.forEach((secret, secretIndex) => {
    if (secret.length < 6) return;
    for (const { where, text } of texts) if (text.includes(secret)) hits.push({ where, secretIndex });
  });
  return hits;
}

/** Every Event in a cluster, one text per Event (reason, message, involved object, annotations). */
export async function eventTexts(kube: KubeClient, cluster: string): Promise<{ where: string; text: string }[]> {
  const events = await kube.list<KubeObject & { message?: string; reason?: string }>({ apiVersion: 'v1', kind: 'Event' });
  return events.items.map((e) => ({ where: `${cluster} Event ${e.metadata.namespace ?? ''}/${e.metadata.name}`, text: JSON.stringify(e) }));
}

/** The status (and annotations) of every Flotilla object upstream, one text per object. */
export async function flotillaStatusTexts(kube: KubeClient): Promise<{ where: string; text: string }[]> {
  const out: { where: string; text: string }[] = [];
  for (const def of kinds) {
    const list = await kube.list<KubeObject & { status?: unknown }>({ apiVersion: API_VERSION, kind: def.kind });
    for (const o of list.items) {
      out.push({
        where: `${def.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`,
        text: JSON.stringify({ status: o.status, annotations: o.metadata.annotations }),
      });
    }
  }
  return out;
}
