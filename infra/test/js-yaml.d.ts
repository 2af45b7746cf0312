// js-yaml 4 ships without types; it is installed as a dependency of @pulumi/pulumi.
// Only the one function the tests use (reading Pulumi.<stack>.yaml) is declared.
declare module 'js-yaml' {
  export function load(text: string): unknown;
}
