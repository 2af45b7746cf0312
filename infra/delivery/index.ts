/** Entry point of the delivery bootstrap (infra/delivery/Pulumi.yaml); the program is in program.ts. */
import { deliveryProgram } from './program';

export = deliveryProgram();
