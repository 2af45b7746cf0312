/** Entry point of the app project (infra/app/Pulumi.yaml); the program is in program.ts. */
import { appProgram } from './program';

export = appProgram();
