/**
 * Which kinds are cluster-scoped (never put in a namespace by the namespace rules of rendering).
 *
 * Offline rendering cannot ask an API server, so Flotilla keeps this documented list of the cluster-scoped
 * kinds of Kubernetes itself, keyed by API group and kind (so that a custom resource that reuses a name
 * such as `Namespace` in its own group is not mistaken for it). Kinds not listed, including every custom
 * resource, are treated as namespaced; callers that know better (the agent, from API discovery) pass their
 * own `isClusterScoped` to rendering.
 */

/** Cluster-scoped kinds by API group ("" is the core group). */
export const CLUSTER_SCOPED_KINDS: Readonly<Record<string, readonly string[]>> = {
  '': ['Namespace', 'Node', 'PersistentVolume', 'ComponentStatus'],
  'rbac.authorization.k8s.io': ['ClusterRole', 'ClusterRoleBinding'],
  'apiextensions.k8s.io': ['CustomResourceDefinition'],
  'apiregistration.k8s.io': ['APIService'],
  'admissionregistration.k8s.io': [
    'MutatingWebhookConfiguration',
    'ValidatingWebhookConfiguration',
    'ValidatingAdmissionPolicy',
    'ValidatingAdmissionPolicyBinding',
    'MutatingAdmissionPolicy',
    'MutatingAdmissionPolicyBinding',
  ],
  'scheduling.k8s.io': ['PriorityClass'],
  'storage.k8s.io': ['StorageClass', 'CSIDriver', 'CSINode', 'VolumeAttachment', 'VolumeAttributesClass'],
  'networking.k8s.io': ['IngressClass', 'IPAddress', 'ServiceCIDR'],
  'node.k8s.io': ['RuntimeClass'],
  policy: ['PodSecurityPolicy'],
  'certificates.k8s.io': ['CertificateSigningRequest', 'ClusterTrustBundle'],
  'flowcontrol.apiserver.k8s.io': ['FlowSchema', 'PriorityLevelConfiguration'],
  'resource.k8s.io': ['DeviceClass'],
  'authentication.k8s.io': ['TokenReview', 'SelfSubjectReview'],
  'authorization.k8s.io': ['SubjectAccessReview', 'SelfSubjectAccessReview', 'SelfSubjectRulesReview'],
};

/** The API group of an apiVersion: `apps/v1` -> `apps`, `v1` -> `` (core). */
export function apiGroup(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

/** True if the kind (of that apiVersion) is one of Kubernetes' cluster-scoped kinds. */
export function isKnownClusterScoped(apiVersion: string, kind: string): boolean {
  return CLUSTER_SCOPED_KINDS[apiGroup(apiVersion)]?.includes(kind) ?? false;
}
