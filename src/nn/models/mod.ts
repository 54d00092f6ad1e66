/**
 * `models`: the tutorial's teacher and student. `resnet18` builds the
 * ResNet-18 teacher (`ResNet` of `BasicBlock`s, torchvision's layout and
 * parameter names, so torchvision's weights load through `weights`), and
 * `StudentNet` is the tutorial's small convolutional student.
 *
 * @module
 */

export * from "./resnet.ts";
export * from "./student.ts";
