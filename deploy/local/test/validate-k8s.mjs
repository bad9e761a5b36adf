// Validates Kubernetes objects (JSON lines on stdin) with kubernetes-models, which
// ships as ES modules only; prints one JSON result line per object.
import { createInterface } from 'node:readline';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as cnpg from '@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1';

const models = {
  'v1/Namespace': core.Namespace,
  'v1/ConfigMap': core.ConfigMap,
  'v1/Secret': core.Secret,
  'v1/Service': core.Service,
  'apps/v1/Deployment': apps.Deployment,
  'batch/v1/CronJob': batch.CronJob,
  'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': autoscaling.HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': networking.NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': keda.ScaledObject,
  'postgresql.cnpg.io/v1/Cluster': cnpg.Cluster,
};

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const object = JSON.parse(line);
  const id = `${object.apiVersion}/${object.kind}`;
  const Model = models[id];
  let error = null;
  if (!Model) error = `no model for ${id}`;
  else {
    try {
      new Model(object).validate();
    } catch (err) {
      error = String(err?.message ?? err);
    }
  }
  process.stdout.write(`${JSON.stringify({ kind: object.kind, name: object.metadata?.name, error })}\n`);
}
