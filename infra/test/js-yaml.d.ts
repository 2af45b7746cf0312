// js-yaml 4 ships without types (a devDependency: the tests read Pulumi.<stack>.yaml and the
// workflows with it). Only the one function they use is declared.
declare module 'js-yaml' {
  export function load(text: string): unknown;
}
