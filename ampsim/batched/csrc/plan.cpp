// The planner's uniform-delay run (msg_id ties, no FIFO) in compiled code: the same event loop as
// ampsim/batched/planner.py's _plan_uniform, delivery for delivery (tested against it).
//
// Deliveries are processed in increasing (arrival, msg_id); every processed delivery broadcasts one
// copy per neighbour (ascending), msg_ids in send order, each copy's delay drawn in msg_id order from
// Python's random.Random (MT19937, random() = 53-bit draw from two 32-bit words), whose state the
// caller passes: d = 1 - random() for U(0, 1], else high - (high - low) * random(). The products are
// kept apart from the sums (no fused multiply-add) so that every arrival time equals Python's.
#include <cstdint>
#include <functional>
#include <queue>
#include <utility>
#include <vector>

namespace {

struct MT {
    uint32_t mt[624];
    int idx;
    uint32_t next() {
        if (idx >= 624) {
            for (int k = 0; k < 624; ++k) {
                uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % 624] & 0x7fffffffu);
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
            }
            idx = 0;
        }
        uint32_t y = mt[idx++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        return y;
    }
    double random() {
        uint32_t a = next() >> 5, b = next() >> 6;
        return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
    }
};

struct PlanArgs {
    int64_t n, k, budget;
    const int64_t* indptr;   // (n + 1,)
    const int64_t* indices;  // neighbours, ascending per node
    const int64_t* starts;   // (k,) start nodes in engine order (msg_ids 0..k-1)
    const uint32_t* mt;      // (624,) Python's Mersenne Twister state
    int64_t mt_pos;
    int64_t unit;            // 1: d = 1 - random(); 0: d = high - (high - low) * random()
    double low, high;
    // outputs, (done,) each: owned by the library until ampsim_plan_free(owner)
    int64_t* node;
    int64_t* msg_id;
    int64_t* cause;
    int64_t* prev;
    int64_t* level;
    double* time;
    void* owner;
    // results
    int64_t done, sent;
    int64_t err_msg;         // -1, or the msg_id of a copy that would arrive at its send time
    double err_t, err_d;
};

struct Out {
    std::vector<int64_t> node, msg_id, cause, prev, level;
    std::vector<double> time;
};

}  // namespace

extern "C" void ampsim_plan_free(void* owner) { delete static_cast<Out*>(owner); }

extern "C" int ampsim_plan_uniform(PlanArgs* a) {
    MT rng;
    for (int i = 0; i < 624; ++i) rng.mt[i] = a->mt[i];
    rng.idx = static_cast<int>(a->mt_pos);
    const double width = a->high - a->low;
    using Item = std::pair<double, int64_t>;
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
    // a calendar: the heap holds the copies of the current time bucket (bucket = floor(arrival * inv),
    // monotone in the arrival, so the pop order is the one heap's), later ones wait in a ring of buckets
    // (a copy arrives at most `high` after the current time: within NB buckets); the heap stays small
    const double inv = 512.0 / a->high;
    const int64_t NB = 516;
    std::vector<std::vector<Item>> ring(NB);
    int64_t cur = 0, waiting = 0;
    std::vector<int64_t> c_dst, c_cause;
    for (int64_t j = 0; j < a->k; ++j) {
        heap.emplace(0.0, j);
        c_dst.push_back(a->starts[j]);
        c_cause.push_back(-1);
    }
    std::vector<int64_t> last(static_cast<size_t>(a->n), -1);
    int64_t next_id = a->k, done = 0;
    a->err_msg = -1;
    Out* out = new Out();
    a->owner = out;
    std::vector<int64_t>& level = out->level;
    const size_t expect = static_cast<size_t>(a->budget < (1 << 24) ? a->budget : (1 << 24));
    for (auto* v : {&out->node, &out->msg_id, &out->cause, &out->prev, &level}) v->reserve(expect);
    out->time.reserve(expect);
    while (done < a->budget) {
        if (heap.empty()) {
            if (!waiting) break;
            do { ++cur; } while (ring[cur % NB].empty());
            std::vector<Item>& bk = ring[cur % NB];
            waiting -= static_cast<int64_t>(bk.size());
            heap = std::priority_queue<Item, std::vector<Item>, std::greater<Item>>(std::greater<Item>(), std::move(bk));
            bk = std::vector<Item>();
        }
        const Item top = heap.top();
        heap.pop();
        const double t = top.first;
        const int64_t mid = top.second;
        const int64_t v = c_dst[mid], cause = c_cause[mid], p = last[v];
        const int64_t lc = cause >= 0 ? level[cause] : -1;
        const int64_t lp = p >= 0 ? level[p] : -1;
        out->node.push_back(v);
        out->msg_id.push_back(mid);
        out->cause.push_back(cause);
        out->prev.push_back(p);
        out->time.push_back(t);
        level.push_back(1 + (lc > lp ? lc : lp));
        last[v] = done;
        for (int64_t e = a->indptr[v]; e < a->indptr[v + 1]; ++e) {
            const double u = rng.random();
            double d;
            if (a->unit) {
                d = 1.0 - u;
            } else {
                volatile double wu = width * u;   // rounded on its own, as Python's high - width * u
                d = a->high - wu;
            }
            const double ta = t + d;
            if (!(ta > t)) {
                a->err_msg = next_id;
                a->err_t = t;
                a->err_d = d;
                break;
            }
            const int64_t b = static_cast<int64_t>(ta * inv);
            if (b <= cur) {
                heap.emplace(ta, next_id);
            } else {
                ring[b % NB].emplace_back(ta, next_id);
                ++waiting;
            }
            c_dst.push_back(a->indices[e]);
            c_cause.push_back(done);
            ++next_id;
        }
        if (a->err_msg >= 0) break;
        ++done;
    }
    a->done = done;
    a->sent = next_id;
    a->node = out->node.data();
    a->msg_id = out->msg_id.data();
    a->cause = out->cause.data();
    a->prev = out->prev.data();
    a->level = out->level.data();
    a->time = out->time.data();
    return a->err_msg >= 0 ? 1 : 0;
}
