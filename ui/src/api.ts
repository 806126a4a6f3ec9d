// The typed API client (generated from the served OpenAPI document, see
// openapi.json) and the signed-in key.

import createClient from 'openapi-fetch';
import type { components, paths } from './api/schema';

export type Schemas = components['schemas'];
export type Role = Schemas['Role'];
export type WhoAmI = Schemas['WhoAmI'];

const STORAGE = 'weft.key';

let key: string | null = sessionStorage.getItem(STORAGE);

export const api = createClient<paths>({ baseUrl: location.origin });
api.use({
  onRequest({ request }) {
    if (key) request.headers.set('Authorization', `Bearer ${key}`);
    return request;
  },
});

export function currentKey(): string | null {
  return key;
}

export function setKey(value: string | null): void {
  key = value;
  if (value) sessionStorage.setItem(STORAGE, value);
  else sessionStorage.removeItem(STORAGE);
}

/** An API refusal: the status and the API's own code and message. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function failure(response: Response, error: unknown): ApiFailure {
  const detail = (error as { error?: { code?: string; message?: string } } | undefined)?.error;
  if (detail?.message) return new ApiFailure(response.status, detail.code ?? 'error', detail.message);
  const text = typeof error === 'string' && error ? error : response.statusText;
  return new ApiFailure(response.status, 'error', `HTTP ${response.status}: ${text || 'no answer'}`);
}

/** The data of an openapi-fetch answer, or an ApiFailure with the API's message. */
export async function ok<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let answer;
  try {
    answer = await pending;
  } catch (e) {
    throw new ApiFailure(0, 'network', `the host did not answer: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (answer.error !== undefined || !answer.response.ok) throw failure(answer.response, answer.error);
  return answer.data as T;
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/** What a signed-in key may do, as the API checks it (see docs/dashboard.md). */
export class Access {
  constructor(readonly who: WhoAmI) {}
  has(role: Role): boolean {
    return RANK[this.who.role] >= RANK[role];
  }
  /** Operators act: send, kill, fork, pause, budgets. */
  get acts(): boolean {
    return this.has('operator');
  }
  /** Admins without a project change the host: plugins, graphs, reloads. */
  get changesHost(): boolean {
    return this.has('admin') && !this.who.project;
  }
  /** Admins manage keys (a project's admin its project's). */
  get managesKeys(): boolean {
    return this.has('admin');
  }
}

/** A WebSocket URL of this host, with the key as `access_token`. */
export function socketUrl(path: string, query: Record<string, string | undefined> = {}): string {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  if (key) url.searchParams.set('access_token', key);
  return url.toString();
}

// The parts of a frame's records the API documents as objects.

export interface JournalEntry {
  seq: number;
  capability: string;
  op: string;
  request: unknown;
  response: unknown;
}

export interface TraceError {
  code: string;
  message: string;
}

export interface FrameRecord {
  thread: string;
  run: string;
  frame: number;
  node: string;
  plugin: string;
  pluginHash: string;
  durationUs: number;
  instantiateUs: number;
  /** The tick ran in an instance kept from the node's earlier tick (`instance: reuse`). */
  reusedInstance?: boolean;
  fuelUsed: number;
  tokens: { prompt: number; completion: number; calls: number };
  inbox: { id: string; from: string; kind: string; bytes: number }[];
  sent: { to: string; kind: string; bytes: number; deliveredAs: string | null; rejected: TraceError | null }[];
  reply: string | null;
  done: boolean;
  events: number;
  memoryWrites: number;
  journal: JournalEntry[];
  logs: { level: string; message: string }[];
  denied: string[];
  error: TraceError | null;
}

export interface StoredFrame {
  frame: number;
  run: string;
  runFrame: number;
  wallTimeMs: number;
  graphVersion: string;
  records: FrameRecord[];
}

export interface FramePage {
  items: StoredFrame[];
  total: number;
  limit: number;
  offset: number;
}
