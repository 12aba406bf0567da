/* A stand-in for the cmetrics functions the official fluent-bit executable exports.
 * Loaded with RTLD_GLOBAL before the plugin, so dlsym(RTLD_DEFAULT, "cmt_...") finds it.
 * Records every metric and label combination; the test reads them back. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#define MAX_METRICS 64
#define MAX_SERIES 1024

struct metric { char name[128]; int labels; int gauge; };
struct series { int metric; char labels[256]; double value; };

static struct metric metrics[MAX_METRICS];
static int n_metrics;
static struct series series[MAX_SERIES];
static int n_series;
static int concurrent, max_concurrent;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void *create(void *cmt, char *ns, char *sub, char *name, char *help, int n, char **keys, int gauge)
{
    (void) help; (void) keys;
    if (!cmt || n_metrics == MAX_METRICS) return NULL;
    struct metric *m = &metrics[n_metrics];
    snprintf(m->name, sizeof m->name, "%s_%s_%s", ns, sub, name);
    m->labels = n;
    m->gauge = gauge;
    n_metrics++;
    return m;
}

static int update(void *metric, double v, int n, char **vals, int set)
{
    /* cmetrics does not lock label-set creation: callers must not overlap */
    if (__sync_add_and_fetch(&concurrent, 1) > max_concurrent) max_concurrent = concurrent;
    struct metric *m = metric;
    char key[256] = "";
    for (int i = 0; i < n; i++) {
        strncat(key, vals[i], sizeof key - strlen(key) - 2);
        if (i + 1 < n) strcat(key, ",");
    }
    int idx = (int) (m - metrics);
    int found = -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_series; i++)
        if (series[i].metric == idx && strcmp(series[i].labels, key) == 0) found = i;
    if (found < 0 && n_series < MAX_SERIES) {
        found = n_series++;
        series[found].metric = idx;
        strcpy(series[found].labels, key);
        series[found].value = 0;
    }
    if (found >= 0) series[found].value = set ? v : series[found].value + v;
    pthread_mutex_unlock(&lock);
    __sync_sub_and_fetch(&concurrent, 1);
    return m->labels == n ? 0 : -1;
}

void *cmt_counter_create(void *c, char *ns, char *s, char *n, char *h, int k, char **keys)
{ return create(c, ns, s, n, h, k, keys, 0); }
void *cmt_gauge_create(void *c, char *ns, char *s, char *n, char *h, int k, char **keys)
{ return create(c, ns, s, n, h, k, keys, 1); }
int cmt_counter_add(void *m, uint64_t ts, double v, int n, char **vals)
{ (void) ts; return update(m, v, n, vals, 0); }
int cmt_counter_inc(void *m, uint64_t ts, int n, char **vals)
{ (void) ts; return update(m, 1, n, vals, 0); }
int cmt_gauge_set(void *m, uint64_t ts, double v, int n, char **vals)
{ (void) ts; return update(m, v, n, vals, 1); }

/* For the test: the value of a series, or -1 when it does not exist. */
double standin_value(const char *name, const char *labels)
{
    double v = -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_series; i++)
        if (strcmp(metrics[series[i].metric].name, name) == 0 && strcmp(series[i].labels, labels) == 0)
            v = series[i].value;
    pthread_mutex_unlock(&lock);
    return v;
}
int standin_max_concurrent(void) { return max_concurrent; }
