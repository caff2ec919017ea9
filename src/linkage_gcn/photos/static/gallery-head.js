(function(){
var errs=[];
function note(m){
errs.push(m);
document.documentElement.dataset.errors=errs.join(' | ');
}
window.addEventListener('error',function(e){
var t=e.target;
if(t&&t.tagName==='IMG'){
t.classList.add('broken');
}
else{
note(String(e.message||'error'));
}},true);
window.addEventListener('unhandledrejection',function(e){
note(String(e.reason));
});
window.addEventListener('load',function(){
var imgs=document.querySelectorAll('main img'),ok=0,bad=0;
for(var i=0;
i<imgs.length;
i++){
if(imgs[i].loading==='lazy'&&!imgs[i].complete)continue;
if(imgs[i].complete&&imgs[i].naturalWidth>0)ok++;
else bad++;
}
var b=document.body;
b.dataset.imagesLoaded=ok;
b.dataset.imagesFailed=bad;
b.dataset.ready='1';
});
})();
