/**
 * Names shared by the platform project (IAM trust, log filters, alarms) and the app project
 * (the Kubernetes objects): the IRSA role trusts exactly this service account, and the
 * monitoring filters read exactly this namespace and container. No dependencies.
 */
export const APP_NAMESPACE = 'mlops';
export const APP_NAME = 'pricesense-api';
export const SERVICE_ACCOUNT = APP_NAME;
export const CONTAINER_NAME = 'api';
export const CONTAINER_PORT = 8080;
