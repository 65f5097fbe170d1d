// @kubernetes/client-node (1.x and 2.x): the scenario of common.py, in JavaScript.
// Why a separate file: the npm client runs under Node from its own cached node_modules; it
// reads the kubeconfig joblet server wrote (KUBECONFIG) and prints the same one JSON line.
import * as k8s from '@kubernetes/client-node';

const NS = 'default';
const prefix = process.argv[2];
const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const batch = kc.makeApiClient(k8s.BatchV1Api);
const core = kc.makeApiClient(k8s.CoreV1Api);
const out = {};

const container = {
  name: 'main', image: 'busybox', command: ['sh', '-c', 'echo index=${JOB_COMPLETION_INDEX:-none}'],
};
function job(name, spec) {
  return {
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name, labels: { suite: prefix } },
    spec: {
      backoffLimit: 0, ...spec,
      template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [container] } },
    },
  };
}

// Watches one Job (from resourceVersion rv, if given) until done(type, obj) holds.
function waitFor(name, rv, done) {
  return new Promise((resolve, reject) => {
    const watch = new k8s.Watch(kc);
    const params = { fieldSelector: `metadata.name=${name}` };
    if (rv) params.resourceVersion = rv;
    let ctl;
    watch.watch(`/apis/batch/v1/namespaces/${NS}/jobs`, params, (type, obj) => {
      if (done(type, obj)) {
        resolve(obj.metadata.resourceVersion);
        if (ctl) ctl.abort();
      }
    }, (err) => { if (err && err.name !== 'AbortError') reject(err); })
      .then((c) => { ctl = c; }, reject);
  });
}
const isComplete = (_type, obj) => (obj.status?.conditions || []).some((c) => c.type === 'Complete' && c.status === 'True');
const isDeleted = (type) => type === 'DELETED';
async function podsOf(name) {
  return (await core.listNamespacedPod({ namespace: NS, labelSelector: `batch.kubernetes.io/job-name=${name}` })).items;
}
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const idx = job(`${prefix}-idx`, { completions: 3, parallelism: 3, completionMode: 'Indexed' });
const created = await batch.createNamespacedJob({ namespace: NS, body: idx });
const rv = await waitFor(idx.metadata.name, created.metadata.resourceVersion, isComplete);
const pods = await podsOf(idx.metadata.name);
out.pods = pods.length;
out.logs = (await Promise.all(pods.map((p) => core.readNamespacedPodLog({ name: p.metadata.name, namespace: NS }))))
  .map((s) => String(s).trim()).sort();
out.listed = (await batch.listNamespacedJob({ namespace: NS, labelSelector: `suite=${prefix}` })).items
  .map((j) => j.metadata.name).sort();

const susp = job(`${prefix}-susp`, { suspend: true });
const screated = await batch.createNamespacedJob({ namespace: NS, body: susp });
out.suspended_pods = (await podsOf(susp.metadata.name)).length;
await batch.patchNamespacedJob({ name: susp.metadata.name, namespace: NS, body: { spec: { suspend: false } } }, mergePatch);
const srv = await waitFor(susp.metadata.name, screated.metadata.resourceVersion, isComplete);
out.resumed_complete = true;

const cron = {
  apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: `${prefix}-cron`, labels: { suite: prefix } },
  spec: { schedule: '0 0 1 1 *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [container] } } } } },
};
await batch.createNamespacedCronJob({ namespace: NS, body: cron });
out.cronjobs = (await batch.listNamespacedCronJob({ namespace: NS, labelSelector: `suite=${prefix}` })).items.map((c) => c.metadata.name);

await batch.deleteNamespacedJob({ name: idx.metadata.name, namespace: NS, propagationPolicy: 'Orphan' });
await waitFor(idx.metadata.name, rv, isDeleted);
out.orphaned_pods = (await podsOf(idx.metadata.name)).length;
await batch.deleteNamespacedJob({ name: susp.metadata.name, namespace: NS, propagationPolicy: 'Foreground' });
await waitFor(susp.metadata.name, srv, isDeleted);
out.foreground_pods_left = (await podsOf(susp.metadata.name)).length;
await batch.deleteNamespacedCronJob({ name: cron.metadata.name, namespace: NS, propagationPolicy: 'Background' });
out.cronjobs_after = (await batch.listNamespacedCronJob({ namespace: NS, labelSelector: `suite=${prefix}` })).items.map((c) => c.metadata.name);
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
