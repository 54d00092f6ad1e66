/**
 * `models`: the tutorial's teacher and student.
 *
 * @module
 */

export { BasicBlock, ResNet, resnet18, type ResNetOptions } from "./resnet.ts";
export { StudentNet, type StudentNetOptions } from "./student.ts";
