/**
 * Entry point of the platform project (Pulumi.yaml `main: infra/`): every AWS resource of
 * one environment. Its outputs are the names other parts consume; the app project
 * (infra/app) reads them through a StackReference.
 */
import { platformProgram } from './program';

export = platformProgram();
