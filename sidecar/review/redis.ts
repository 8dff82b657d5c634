// The review queue in Redis, when the sidecars share one: every replica holds items in the same
// place, so reviewers see one queue and an app's outcome is readable at any replica. An item is
// one key that expires with its retention; a sorted set lists them by time. Decisions and the
// one-time release of an approved input are compare-and-set scripts, atomic across replicas.
import { Redis } from 'ioredis';
import { ReviewError, decided, newItem, type ReviewAction, type ReviewDecision, type ReviewItem, type ReviewStatus, type Reviews } from './store.ts';

// Replace the item only if it is still in the state the caller read: 1 done, 0 gone, -1 changed.
const DECIDE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
if cjson.decode(v).status ~= 'pending' then return -1 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return 1`;

const USE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local item = cjson.decode(v)
if item.status ~= 'approved' or item.decision == nil or item.decision.used then return 0 end
item.decision.used = true
redis.call('SET', KEYS[1], cjson.encode(item), 'KEEPTTL')
return 1`;

export class RedisReviewStore implements Reviews {
  readonly durable = true;
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ownsClient: boolean;

  constructor(target: Redis | string, prefix = 'ae:review:') {
    this.ownsClient = typeof target === 'string';
    this.redis = typeof target === 'string' ? new Redis(target, { lazyConnect: false, maxRetriesPerRequest: 1, enableOfflineQueue: true }) : target;
    this.prefix = prefix;
    this.redis.on('error', () => {
      // Each call reports its own failure; the connection error event only needs a listener.
    });
  }

  private key(id: string): string {
    return `${this.prefix}${id}`;
  }

  async add(item: Omit<ReviewItem, 'id' | 'status' | 'createdAt' | 'expiresAt'>, retentionMs: number, now = Date.now()): Promise<ReviewItem> {
    const full = newItem(item, retentionMs, now);
    await this.redis.multi().set(this.key(full.id), JSON.stringify(full), 'PX', retentionMs).zadd(`${this.prefix}index`, String(now), full.id).exec();
    return full;
  }

  async get(id: string, now = Date.now()): Promise<ReviewItem | undefined> {
    const v = await this.redis.get(this.key(id));
    const item = v ? (JSON.parse(v) as ReviewItem) : undefined;
    return item && item.expiresAt > now ? item : undefined;
  }

  async list(status?: ReviewStatus, now = Date.now()): Promise<ReviewItem[]> {
    const ids = await this.redis.zrange(`${this.prefix}index`, "0", "-1");
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.key(id)));
    const gone = ids.filter((_, i) => values[i] === null);
    // Expired keys leave their index entry behind: tidy as we go.
    if (gone.length > 0) await this.redis.zrem(`${this.prefix}index`, ...gone);
    return values
      .flatMap((v) => (v ? [JSON.parse(v) as ReviewItem] : []))
      .filter((i) => i.expiresAt > now && (!status || i.status === status))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async decide(id: string, action: ReviewAction, decision: Omit<ReviewDecision, 'at' | 'used'>, now = Date.now()): Promise<ReviewItem> {
    const item = await this.get(id, now);
    if (!item) throw new ReviewError(404, `No review '${id}' (it may have expired).`);
    if (item.status !== 'pending') throw new ReviewError(409, `Review '${id}' was already decided: ${item.status}.`);
    const next = decided(item, action, decision, now);
    const done = (await this.redis.eval(DECIDE, 1, this.key(id), JSON.stringify(next))) as number;
    if (done === 0) throw new ReviewError(404, `No review '${id}' (it may have expired).`);
    if (done === -1) throw new ReviewError(409, `Review '${id}' was decided meanwhile by another reviewer.`);
    return next;
  }

  async use(id: string): Promise<boolean> {
    return ((await this.redis.eval(USE, 1, this.key(id))) as number) === 1;
  }

  /** Redis expires items by itself. */
  async sweep(): Promise<number> {
    return 0;
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.redis.disconnect();
  }
}
